-- The browser test's clinic (tests/browser/worklist.js): its protocol turns
-- the events the test POSTs into alerts.
return { description = "worklist browser test clinic" }
