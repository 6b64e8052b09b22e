print("hello", 1, nil, {}, setmetatable({}, { __tostring = function() return "t" end }))
return nil
