-- The browser test's clinic (tests/browser/worklist.js): its protocol turns
-- the events the test POSTs into alerts.
-- Its zone makes the page show local times; it is always open (no hours), so
-- no notification waits.
return { description = "worklist browser test clinic", timezone = "America/New_York" }
