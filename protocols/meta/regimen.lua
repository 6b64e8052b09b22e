---@meta regimen
-- LuaLS (lua-language-server) annotations for the `regimen` module and the
-- values a protocol is handed: the history `h`, events, alerts, protocols.
-- Editor support only: regimen never loads this file (it is not in a protocol
-- set). Point your editor at this folder (protocols/.luarc.json does it for
-- the shipped tree; see docs/protocols.md "Editor support"). The semantics are
-- those of docs/protocols.md; the functions are bindings/regimen.c and
-- bindings/history.c.

---Milliseconds since 1970-01-01 UTC (`event.at`, `now`).
---@alias regimen.Time integer
---A length of time in milliseconds: `last.at + R.days(2)` is a time.
---@alias regimen.Duration integer
---"info", "warning" or "critical".
---@alias regimen.Severity "info"|"warning"|"critical"
---A table of `data` fields that must be equal (`{ instrument = "phq9" }`),
---or a function given each event that says whether it matches.
---@alias regimen.Filter table<string, any>|fun(e: regimen.Event): any
---A parameter value: protocols' defaults and overrides are numbers, strings
---or booleans (durations are integers of ms).
---@alias regimen.Param number|string|boolean

---An event of the patient's history (read-only).
---@class regimen.Event
---@field id string the event's id (unique in the clinic)
---@field type string the event type, e.g. "infusion"
---@field at regimen.Time when it happened
---@field data table<string, any> the event's `data` (`{}` when it had none)

---The patient's history: only events at or before `now` are visible.
---"After an event" means recorded after it (events at the same instant that
---arrived later count, the event itself does not); "after a time" means
---strictly later.
---@class regimen.History
---@field now regimen.Time the moment being evaluated
---@field patient string the patient id
---@field clinic string the clinic
local History = {}

---The latest matching event, or nil.
---@param type? string event type, nil for any
---@param filter? regimen.Filter
---@return regimen.Event?
function History:last(type, filter) end

---The earliest matching event, or nil.
---@param type? string event type, nil for any
---@param filter? regimen.Filter
---@return regimen.Event?
function History:first(type, filter) end

---How many events match.
---@param type? string event type, nil for any
---@param filter? regimen.Filter
---@return integer
function History:count(type, filter) end

---All matching events, oldest first.
---@param type? string event type, nil for any
---@param filter? regimen.Filter
---@return regimen.Event[]
function History:list(type, filter) end

---Matching events after an event (or a time), oldest first.
---@param e_or_time regimen.Event|regimen.Time
---@param type? string event type, nil for any
---@param filter? regimen.Filter
---@return regimen.Event[]
function History:after(e_or_time, type, filter) end

---Matching events before an event (or a time), oldest first.
---@param e_or_time regimen.Event|regimen.Time
---@param type? string event type, nil for any
---@param filter? regimen.Filter
---@return regimen.Event[]
function History:before(e_or_time, type, filter) end

---The first matching event after an event (or a time), or nil: what
---`h:after(...)[1]` gives, without making the list.
---@param e_or_time regimen.Event|regimen.Time
---@param type? string event type, nil for any
---@param filter? regimen.Filter
---@return regimen.Event?
function History:first_after(e_or_time, type, filter) end

---The latest matching event before an event (or a time), or nil.
---@param e_or_time regimen.Event|regimen.Time
---@param type? string event type, nil for any
---@param filter? regimen.Filter
---@return regimen.Event?
function History:last_before(e_or_time, type, filter) end

---Matching events at or after a time, oldest first, e.g.
---`h:since(now - R.days(30), "assessment")`.
---@param time regimen.Time
---@param type? string event type, nil for any
---@param filter? regimen.Filter
---@return regimen.Event[]
function History:since(time, type, filter) end

---The values of `data[field]` of the matching events, oldest first (events
---without the field are left out), e.g. `h:values("infusion", "dose_mg_per_kg")`.
---@param type string event type
---@param field string a top-level `data` field
---@param filter? regimen.Filter
---@return any[]
function History:values(type, field, filter) end

---`fn(h, ...)`, computed once and shared by every rule, kept from step to step
---while what it read is unchanged and it is asked for with the same `fn` and
---plain arguments (for building blocks; treat the value as read-only; a table
---argument such as `p` is not compared: the key must say what of it counts).
---@generic T
---@param key any
---@param fn fun(h: regimen.History, ...): T
---@param ... any
---@return T
function History:memo(key, fn, ...) end

---What a rule returns for one alert: a plain table with these fields works
---too (it is checked when the rule returns).
---@class regimen.Alert
---@field message string|regimen.Template|fun():string text a nurse understands (at most 2,000 bytes), a template (made when the alert opens), or a function that returns the text (called only when the alert opens)
---@field key? string|integer which alert of the rule this is (one per patient without it)
---@field due? regimen.Time the time the alert opens (now or earlier: open at once)
---@field ends? regimen.Time the time the alert closes by itself
---@field severity? regimen.Severity overrides the rule's severity

---A message template: the text (items 1, 2, ... joined) with placeholders
---`{name}`, `{name:.1}`, `{t:day}`, `{t:date}`, `{t:time}`, `{t:clock}`,
---`{d:days}`, `{d:hours}`, `{d:minutes}` (`{d:hours.1}`), `{{` and `}}`, and a
---value by name for each placeholder:
---`{ "infusion {n} due since {due:day}", n = s.given + 1, due = due }`.
---@alias regimen.Template table<integer|string, string|number>

---`check(h, now, p)`: nothing (no alert), one alert, or a list of alerts.
---@alias regimen.Check fun(h: regimen.History, now: regimen.Time, p: table<string, regimen.Param>): (regimen.Alert|regimen.Alert[]|nil)

---@class regimen.Rule
---@field id string rule id: a-z 0-9 _ - .
---@field severity regimen.Severity
---@field check regimen.Check
---@field description? string

---@class regimen.Protocol
---@field id string protocol id: a-z 0-9 _ - . ("ketamine.acute")
---@field version string recorded with every transition
---@field description? string
---@field applies? fun(h: regimen.History, now: regimen.Time, p: table<string, regimen.Param>): boolean? when false the protocol has no alerts for the patient
---@field params? table<string, regimen.Param|regimen.ParamDecl> named parameters: a default (its kind follows from it) or R.param { ... }
---@field plan_events? string[] event types whose `data` override parameters per patient (default {"enrolled", "plan_adjusted"})
---@field rules regimen.Rule[] a non-empty list

---A clinic's settings file, clinic.lua: `return { ... } ---@type regimen.ClinicSettings`.
---A parameter's declaration (R.param): its default and what kind of value it takes.
---@class regimen.ParamDecl
---@field [1]? regimen.Param the default (or `default =`)
---@field default? regimen.Param
---@field kind? "duration"|"count"|"number"|"score"|"string"|"flag"|"choice" guessed from the default when absent
---@field unit? string what a number counts ("mmHg", "mg/kg", "PHQ-9 points")
---@field min? number the smallest value a count, number or score may take
---@field max? number the largest
---@field choices? string[] the words a choice may be
---@field shared? string set only at the top of a clinic's params, for every protocol that has it ("course")
---@field plan? "minutes"|"hours"|"days"|"weeks" what a number in a patient's plan event counts, for a duration
---@field description? string what it means, for the reference (`regimen check --describe`)

---@class regimen.ClinicSettings
---@field description? string
---@field include? string[] shipped protocol sets the clinic runs ({"ketamine"})
---@field params? table<string, regimen.Param|table<string, regimen.Param>> overrides: a parameter name, or a protocol id -> { name = value }
---@field fhir? regimen.FhirSettings how FHIR R4 resources become events (docs/fhir.md)

---The FHIR import of a clinic (`regimen import-fhir`, POST /v1/fhir).
---@class regimen.FhirSettings
---@field codes? table<"ketamine"|"infusion"|"enrolled"|"discharged"|"preparation_session"|"integration_session"|"followup_visit"|"pcl5", string[]> replaces a default code list; each "system|code" or a bare code
---@field map? fun(resource: table, event: table?): table|false|nil called for every resource with the default event (nil when none); returns the event to store, or nil/false for none

---`local R = require "regimen"`
---@class regimen
local R = {}

---A duration of n seconds (fractions allowed).
---@param n number
---@return regimen.Duration
function R.seconds(n) end

---A duration of n minutes (fractions allowed).
---@param n number
---@return regimen.Duration
function R.minutes(n) end

---A duration of n hours (fractions allowed: `R.hours(1.5)`).
---@param n number
---@return regimen.Duration
function R.hours(n) end

---A duration of n days (fractions allowed).
---@param n number
---@return regimen.Duration
function R.days(n) end

---A duration of n weeks (fractions allowed).
---@param n number
---@return regimen.Duration
function R.weeks(n) end

---A duration as a number of days, for messages.
---@param d regimen.Duration
---@return number
function R.in_days(d) end

---A duration as a number of hours, for messages.
---@param d regimen.Duration
---@return number
function R.in_hours(d) end

---`"9 Mar 2026"`: the clinic's local date (its `timezone`; UTC without one), for messages.
---@param t regimen.Time
---@return string
function R.day(t) end

---`"2026-03-09"`: the clinic's local date.
---@param t regimen.Time
---@return string
function R.date(t) end

---`"2026-03-09T09:05:00-05:00"`: RFC 3339 with the clinic's offset
---(`"2026-03-09T14:05:00Z"` in a clinic without a zone).
---@param t regimen.Time
---@return string
function R.time(t) end

---`"09:05"`: the clinic's local time of day.
---@param t regimen.Time
---@return string
function R.clock(t) end

---The instant `n` days after `t`'s local day, at the same local time as `t`
---(or at `"HH:MM"`): `R.calendar_days(e.at, 1, "09:00")` is 09:00 the next
---day, on both sides of a daylight-saving change. A time in a skipped hour
---moves forward by the gap; one in a repeated hour is its first occurrence.
---@param t regimen.Time
---@param n integer
---@param clock? string "HH:MM"
---@return regimen.Time
function R.calendar_days(t, n, clock) end

---`t` plus the duration `d`, its whole days counted on the clinic's calendar
---(same local time), the rest exact: `R.calendar_add(last.at, p.due_after)`.
---In a clinic without a zone it is `t + d`.
---@param t regimen.Time
---@param d regimen.Duration
---@return regimen.Time
function R.calendar_add(t, d) end

---The `n`-th day after `t`'s local day on which the clinic opens (its
---`hours` and `closures`; `n = 0`: `t`'s day if it opens, else the next),
---at `"HH:MM"` or, without it, at that day's opening.
---@param t regimen.Time
---@param n integer
---@param clock? string "HH:MM"
---@return regimen.Time
function R.business_days(t, n, clock) end

---`t` when the clinic is open then, else its next opening.
---@param t regimen.Time
---@return regimen.Time
function R.next_open(t) end

---Whether the clinic's hours and closures have it open at `t`.
---@param t regimen.Time
---@return boolean
function R.is_open(t) end

---The time of an RFC 3339 text: `R.at("2026-03-02T14:05:00-05:00")`.
---@param text string
---@return regimen.Time
function R.at(text) end

---Checks a protocol table where it is written (unknown fields, severities,
---ids) and returns it: `return R.protocol { ... }`.
---@param p regimen.Protocol
---@return regimen.Protocol
function R.protocol(p) end

---Returns the alert. Its fields are checked when the rule returns it (in full
---when it opens); `regimen check` checks them here, at this line, with a
---template's placeholders.
---@param a regimen.Alert
---@return regimen.Alert
function R.alert(a) end

---Declares a parameter with its kind, checked where you write it:
---`R.param { 150, kind = "number", unit = "mmHg", min = 0, max = 300 }`.
---@param d regimen.ParamDecl
---@return regimen.ParamDecl
function R.param(d) end

return R
