-- Helpers shared by the bench scripts: per-thread ids, counters summed in done(), form encoding.
local common = {}

local threads = {}

-- setup() runs in wrk's main Lua state, once per thread: give each thread an id and remember it.
function common.setup(thread)
  thread:set("thread_id", #threads)
  thread:set("thread_count", 0)
  table.insert(threads, thread)
  for _, t in ipairs(threads) do
    t:set("thread_count", #threads)
  end
end

-- done() runs in the main state: sum each named global counter over the threads and print one
-- machine-readable line that bench/wrk.py parses.
function common.report(names)
  local parts = {}
  for _, name in ipairs(names) do
    local total = 0
    for _, thread in ipairs(threads) do
      total = total + (thread:get(name) or 0)
    end
    table.insert(parts, name .. "=" .. total)
  end
  io.write("BENCH " .. table.concat(parts, " ") .. "\n")
end

function common.urlencode(value)
  return (value:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function common.env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then
    if default == nil then error("missing environment variable " .. name) end
    return default
  end
  return value
end

return common
