// bench/peer/peer.js - the peer baseline: json-rules-engine evaluating the
// two rules of bench/two-rules/two.lua on the same cohort.
//
//   node peer.js COHORT.jsonl AT
//
// Reads the cohort (JSON Lines from bench/gen.c), keeps each event's time,
// type and data, groups them per (clinic, patient) in arrival order and sorts
// each history by time (stable, as the engine does). Then for every patient
// it computes the facts the two rules need from the events at or before AT,
// and runs one json-rules-engine Engine (built once, rules added once) on
// them. `seconds` is the whole of it, end to end from the file (as regimen's
// sweep figure includes reading its store); `eval_seconds` is the rules'
// part alone, the histories already in memory:
//   acute.infusion-due: enrolled in ketamine, in the acute phase (fewer than
//     acute_infusions infusions since the enrolment; the enrolment's data may
//     set acute_infusions) and >= 2 days since the latest infusion;
//   safety.bp-high: the latest pre-infusion vitals of the course are >= 160
//     systolic or >= 100 diastolic, and no later vitals are below both.
// The same semantics as protocols/ketamine/acute.lua and safety.lua (course
// since the latest enrolment, nothing after a discharge). Prints one line:
//   peer patients=N events=E seconds=S patients_per_s=X events_per_s=Y
//        infusion_due=A bp_high=B eval_seconds=T eval_patients_per_s=Z
// where A and B count the patients each rule fired for, to compare with the
// alerts regimen opens.
'use strict'

const fs = require('fs')
const readline = require('readline')
const { Engine } = require('json-rules-engine')

const DAY = 86400000
const PARAMS = { acute_infusions: 6, infusion_due_after: 2 * DAY, bp_systolic_max: 160, bp_diastolic_max: 100 }

async function load (file) {
  const patients = new Map()
  let events = 0
  const rl = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity })
  for await (const line of rl) {
    if (!line) continue
    const e = JSON.parse(line)
    const key = e.clinic + '\u0000' + e.patient
    let list = patients.get(key)
    if (!list) patients.set(key, (list = []))
    list.push({ id: e.id, type: e.type, at: Date.parse(e.at), data: e.data || {} })
    events++
  }
  for (const list of patients.values()) list.sort((a, b) => a.at - b.at) // stable
  return { patients, events }
}

// The facts of one patient at `now` (ms), from its time-sorted history.
function facts (history, now) {
  let n = history.length
  while (n > 0 && history[n - 1].at > now) n--
  // the current course: the latest ketamine enrolment, unless discharged since
  let start = -1
  for (let i = n - 1; i >= 0; i--) {
    const e = history[i]
    if (e.type === 'enrolled' && e.data.program === 'ketamine') { start = i; break }
  }
  for (let i = start + 1; start >= 0 && i < n; i++) {
    if (history[i].type === 'discharged') start = -1
  }
  const f = {
    enrolled: start >= 0,
    infusionsGiven: 0,
    acuteInfusions: PARAMS.acute_infusions,
    msSinceLastInfusion: -1,
    hasPreVitals: false,
    systolic: 0,
    diastolic: 0,
    laterVitalsBelowLimits: 0,
    events: n
  }
  if (start < 0) return f
  // the patient's plan: enrolled / plan_adjusted data from the enrolment on
  let lastInfusion = null
  let pre = -1
  for (let i = start; i < n; i++) {
    const e = history[i]
    if ((e.type === 'enrolled' || e.type === 'plan_adjusted') && typeof e.data.acute_infusions === 'number') {
      f.acuteInfusions = e.data.acute_infusions
    }
    if (i === start) continue
    if (e.type === 'infusion') {
      f.infusionsGiven++
      lastInfusion = e
    } else if (e.type === 'vitals' && (e.data.phase === undefined || e.data.phase === null || e.data.phase === 'pre')) {
      pre = i
    }
  }
  if (lastInfusion) f.msSinceLastInfusion = now - lastInfusion.at
  if (pre >= 0) {
    const v = history[pre].data
    f.hasPreVitals = true
    f.systolic = v.systolic
    f.diastolic = v.diastolic
    for (let i = pre + 1; i < n; i++) {
      const e = history[i]
      if (e.type === 'vitals' && e.data.systolic < PARAMS.bp_systolic_max && e.data.diastolic < PARAMS.bp_diastolic_max) {
        f.laterVitalsBelowLimits++
      }
    }
  }
  return f
}

function engine () {
  const e = new Engine([], { allowUndefinedFacts: false })
  e.addRule({
    name: 'acute.infusion-due',
    conditions: {
      all: [
        { fact: 'enrolled', operator: 'equal', value: true },
        { fact: 'infusionsGiven', operator: 'greaterThan', value: 0 },
        { fact: 'infusionsGiven', operator: 'lessThan', value: { fact: 'acuteInfusions' } },
        { fact: 'msSinceLastInfusion', operator: 'greaterThanInclusive', value: PARAMS.infusion_due_after }
      ]
    },
    event: { type: 'acute.infusion-due', params: { severity: 'info' } }
  })
  e.addRule({
    name: 'safety.bp-high',
    conditions: {
      all: [
        { fact: 'enrolled', operator: 'equal', value: true },
        { fact: 'hasPreVitals', operator: 'equal', value: true },
        {
          any: [
            { fact: 'systolic', operator: 'greaterThanInclusive', value: PARAMS.bp_systolic_max },
            { fact: 'diastolic', operator: 'greaterThanInclusive', value: PARAMS.bp_diastolic_max }
          ]
        },
        { fact: 'laterVitalsBelowLimits', operator: 'equal', value: 0 }
      ]
    },
    event: { type: 'safety.bp-high', params: { severity: 'critical' } }
  })
  return e
}

async function main () {
  const [file, atText] = process.argv.slice(2)
  if (!file || !atText) {
    console.error('usage: node peer.js COHORT.jsonl AT')
    process.exit(2)
  }
  const now = Date.parse(atText)
  if (Number.isNaN(now)) {
    console.error(`peer: not a time: ${atText}`)
    process.exit(2)
  }
  const start = process.hrtime.bigint()
  const { patients } = await load(file)
  const e = engine()
  const fired = { 'acute.infusion-due': 0, 'safety.bp-high': 0 }
  let events = 0
  const t0 = process.hrtime.bigint()
  for (const history of patients.values()) {
    const f = facts(history, now)
    events += f.events
    const { events: out } = await e.run(f)
    for (const ev of out) fired[ev.type]++
  }
  const end = process.hrtime.bigint()
  const seconds = Number(end - start) / 1e9
  const evalSeconds = Number(end - t0) / 1e9
  console.log(`peer patients=${patients.size} events=${events} seconds=${seconds.toFixed(3)}` +
    ` patients_per_s=${Math.round(patients.size / seconds)} events_per_s=${Math.round(events / seconds)}` +
    ` infusion_due=${fired['acute.infusion-due']} bp_high=${fired['safety.bp-high']}` +
    ` eval_seconds=${evalSeconds.toFixed(3)} eval_patients_per_s=${Math.round(patients.size / evalSeconds)}`)
}

main().catch((err) => { console.error(err); process.exit(1) })
