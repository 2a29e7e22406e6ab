-- Complete citizen submissions, as a browser without JavaScript makes them:
--
--   1. GET  /{tenant}/demarches/{service}                  the service page (its `_csrf`)
--   2. POST /{tenant}/demarches/{service}/commencer        303 → /{tenant}/brouillons/{d}/etape/1
--   3. GET  /{tenant}/brouillons/{d}/etape/1                the form page (its `_csrf`)
--   4. POST /{tenant}/brouillons/{d}/etape/1                303 → …/recapitulatif
--   5. GET  /{tenant}/brouillons/{d}/recapitulatif          the summary (the send form's `_csrf`)
--   6. POST /{tenant}/brouillons/{d}/envoyer                303 → /compte/demandes/{id}?envoye=1,
--                                                           sent once the transaction is committed
--
--   wrk -t C -c C -d D -s bench/load/submit.lua http://127.0.0.1:PORT/ -- TENANT SERVICE COOKIE...
--
-- Each wrk thread must have exactly one connection (-t equal to -c): the flow is a state
-- machine per Lua state, and wrk's callbacks do not say which connection a response came on.
-- COOKIEs are `guichet_session=…` values of logged-in citizens; thread i uses cookie i mod n.
-- The answers are those of the "question-mairie" service (sujet, question, rappel).
--
-- Any other status or Location than the expected one counts as unexpected (by step) and the
-- thread starts a new submission; `done` reports submissions completed and unexpected answers.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local GET_SERVICE, START, GET_STEP, POST_STEP, GET_SUMMARY, SEND = 1, 2, 3, 4, 5, 6
local names = { "service_page", "start", "form_page", "form_post", "summary", "send" }

local tenant, service
local state = GET_SERVICE
local csrf = nil
local draft = nil   -- "/{tenant}/brouillons/{id}"
local get_headers, post_headers = {}, {}
local seq = 0

submitted = 0
unexpected = 0
unexpected_by_step = {}
last_unexpected = ""

function init(args)
  tenant, service = args[1], args[2]
  local cookies = {}
  for i = 3, #args do table.insert(cookies, args[i]) end
  local cookie = cookies[(id or 0) % #cookies + 1]
  get_headers = { ["Cookie"] = cookie }
  post_headers = {
    ["Cookie"] = cookie,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }
  for i = 1, #names do unexpected_by_step[i] = 0 end
end

local function answers()
  -- A different subject per submission, a ~300-character question: a realistic request.
  local sujet = string.format("Question de charge %d-%d", id or 0, seq)
  local question = string.rep("Bonjour, quels sont les horaires d'ouverture de la mairie en été ? ", 5)
  return "_csrf=" .. csrf .. "&sujet=" .. urlencode(sujet) .. "&question=" .. urlencode(question)
    .. "&rappel=non&action=suivant"
end

-- Side-effect free: wrk may call it once more than it sends (to check the request).
function request()
  if state == GET_SERVICE then
    return wrk.format("GET", "/" .. tenant .. "/demarches/" .. service, get_headers)
  elseif state == START then
    return wrk.format("POST", "/" .. tenant .. "/demarches/" .. service .. "/commencer",
      post_headers, "_csrf=" .. csrf)
  elseif state == GET_STEP then
    return wrk.format("GET", draft .. "/etape/1", get_headers)
  elseif state == POST_STEP then
    return wrk.format("POST", draft .. "/etape/1", post_headers, answers())
  elseif state == GET_SUMMARY then
    return wrk.format("GET", draft .. "/recapitulatif", get_headers)
  else
    return wrk.format("POST", draft .. "/envoyer", post_headers, "_csrf=" .. csrf)
  end
end

local function fail(status, detail)
  unexpected = unexpected + 1
  unexpected_by_step[state] = unexpected_by_step[state] + 1
  last_unexpected = names[state] .. ": " .. status .. " " .. (detail or "")
  state, draft = GET_SERVICE, nil
end

function response(status, headers, body)
  count_status(status)
  local location = header(headers, "location") or ""
  if state == GET_SERVICE or state == GET_STEP or state == GET_SUMMARY then
    local token = status == 200 and csrf_of(body)
    if not token then return fail(status, "no _csrf in the page") end
    csrf = token
    state = state + 1
  elseif state == START then
    local d = status == 303 and location:match("^(.*/brouillons/[0-9a-f%-]+)/etape/1$")
    if not d then return fail(status, location) end
    draft, seq = d, seq + 1
    state = GET_STEP
  elseif state == POST_STEP then
    if status ~= 303 or location ~= draft .. "/recapitulatif" then return fail(status, location) end
    state = GET_SUMMARY
  else
    if status ~= 303 or not location:match("^/compte/demandes/[0-9a-f%-]+") then
      return fail(status, location)
    end
    submitted = submitted + 1
    state, draft = GET_SERVICE, nil
  end
end

function extra_report(report)
  flow_report(report, names)
end
