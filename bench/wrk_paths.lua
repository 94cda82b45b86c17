-- wrk script for b_http.py: spread the requests over several paths, read one per line from the file named
-- after `--` (so secret link tokens never appear on a command line). Each wrk thread cycles through them.
--   wrk -t2 -c16 -d10s --latency -s bench/wrk_paths.lua http://127.0.0.1:8765 -- /tmp/paths.txt
local paths = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  assert(#paths > 0, "no paths in " .. args[1])
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
