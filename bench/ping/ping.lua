-- bench/ping/ping.lua: the test protocol of the service benchmark.
--
-- Every `ping` event opens an alert at its own instant (bench.echo: measures
-- POST -> transition on the stream) and another one second later
-- (bench.timer: measures how late a time-driven transition fires). Each
-- alert is keyed by the ping's id and named in its message, so the load
-- client can match what it posted with what it receives.

local R = require "regimen"

return R.protocol {
  id = "bench.ping",
  version = "1.0.0",
  description = "Benchmark only: alerts that open at a ping and one second after it.",

  params = {
    timer_after = R.seconds(1), -- bench.timer opens this long after the ping
  },

  rules = {
    {
      id = "bench.echo",
      severity = "info",
      check = function(h, now, p)
        local ping = h:last("ping")
        if not ping then return end
        return R.alert { key = ping.id, due = ping.at, message = "echo " .. ping.id }
      end,
    },

    {
      id = "bench.timer",
      severity = "info",
      check = function(h, now, p)
        local ping = h:last("ping")
        if not ping then return end
        return R.alert { key = ping.id, due = ping.at + p.timer_after, message = "timer " .. ping.id }
      end,
    },
  },
}
