// durable/durable.hpp — everything a program that retries needs, in one include. A program that
// journals adds <durable/invocations.hpp> (durable::invocations) and a store:
// <durable/file_journal.hpp> (durable::file_journal) or the memory_journal of <durable/journal.hpp>.
#pragma once

#include "clock.hpp"          // durable::manual_clock, durable::time_point
#include "codec.hpp"          // durable::codec, durable::fields (what a journaled call's result is recorded as)
#include "completion.hpp"     // durable::completion, durable::completer
#include "error.hpp"          // durable::error, durable::failure
#include "error_table.hpp"    // durable::on, durable::error_table, durable::standard_errors
#include "event.hpp"          // durable::event
#include "fail.hpp"           // durable::fail
#include "fan_out.hpp"        // durable::gather, durable::any, durable::race
#include "function.hpp"       // durable::function, durable::call
#include "log.hpp"            // durable::format_event, durable::log_events_to
#include "output_table.hpp"   // durable::inspect, durable::output_table
#include "policy.hpp"         // durable::policy, durable::fallback, durable::default_policy
#include "retry_policy.hpp"   // durable::retry_policy, durable::jitter
#include "runtime.hpp"        // durable::runtime, durable::runtime_options
#include "sleep.hpp"          // durable::sleep_for, durable::sleep_until
#include "stop.hpp"           // durable::this_stop_token
#include "status.hpp"         // durable::status and its helpers
#include "task.hpp"           // durable::durable_task
