-- lib/words.lua: parameters that are lists of words, space-separated
-- ("sedation dissociation"), as a clinic writes them in its params.
-- Depends on nothing.
--     local words = require "lib.words"

local words = {}

-- Is `word` one of the space-separated words of `list`?
function words.listed(list, word)
  for item in list:gmatch("%S+") do
    if item == word then return true end
  end
  return false
end

return words
