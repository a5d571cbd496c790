-- wrk script: a different access token on every request (read from TOKENS_FILE), so that no
-- cache of verified tokens or imported keys per token can help.
local tokens = {}
local i = 0
function init(args)
  for line in io.lines(os.getenv("TOKENS_FILE")) do tokens[#tokens + 1] = line end
end
function request()
  i = (i % #tokens) + 1
  return wrk.format("GET", "/auth/me", { ["Authorization"] = "Bearer " .. tokens[i] })
end
