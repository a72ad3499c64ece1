-- wrk script: POST a 2-message chat request; STREAM=1 streams; MODEL picks the model.
-- Prints "RESULT rps=.. p50_ms=.. p99_ms=.. bad=.." (bad: non-2xx or a body without usage/[DONE]).
local stream = os.getenv("STREAM") == "1"
local model = os.getenv("MODEL") or "gpt-4o-mini"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are terse."},'
  .. '{"role":"user","content":"Say hello."}]' .. (stream and ',"stream":true' or '') .. '}'
local bad = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  local want = stream and "[DONE]" or "total_tokens"
  if status < 200 or status > 299 or not string.find(body, want, 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f bad=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
