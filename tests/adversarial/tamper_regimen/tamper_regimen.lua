-- adversarial/tamper_regimen
-- Attacks: the regimen module and shared protocol modules (lib.course from
-- the shipped set), which every protocol of the clinic uses: replacing
-- R.days or R.alert, or a building block, would change other protocols'
-- results for the next patient.
-- Must happen: "module 'regimen' is read-only" naming this file; the next
-- patient sees the original module.
local R = require 'regimen'
local course = require 'lib.course'

return R.protocol {
  id = 'adv.tamper-regimen', version = '1',
  rules = { {
    id = 'adv.tamper-regimen', severity = 'info',
    check = function(h, now, p)
      if R.days(1) ~= 86400000 or type(course.enrolment) ~= 'function' then
        error('ESCAPED: a previous evaluation changed a module', 0)
      end
      pcall(function() course.enrolment = function() return nil end end)
      pcall(function() require('regimen').hours = nil end)
      if type(course.enrolment) ~= 'function' or R.hours == nil then
        error('ESCAPED: a module accepted a write', 0)
      end
      R.days = function() return 0 end
      error('ESCAPED: R.days was replaced', 0)
    end,
  } },
}
