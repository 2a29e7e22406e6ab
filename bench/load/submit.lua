-- Complete citizen submissions of a form with a summary page, as a browser without JavaScript
-- makes them:
--
--   1. GET  /{tenant}/demarches/{service}                  the service page (200)
--   2. GET  /{tenant}/demarches/{service}/formulaire       the form page (its `_csrf` and the
--                                                          `_brouillon` nonce its draft id derives from)
--   3. POST /{tenant}/demarches/{service}/formulaire       the draft is made; 303 →
--                                                          /{tenant}/brouillons/{d}/recapitulatif
--   4. GET  /{tenant}/brouillons/{d}/recapitulatif          the summary (the send form's `_csrf`)
--   5. POST /{tenant}/brouillons/{d}/envoyer                303 → /compte/demandes/{id}?envoye=1,
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

local GET_SERVICE, GET_FORM, POST_FORM, GET_SUMMARY, SEND = 1, 2, 3, 4, 5
local names = { "service_page", "form_page", "form_post", "summary", "send" }

local service_path, form_path
local state = GET_SERVICE
local csrf, token = nil, nil
local draft = nil   -- "/{tenant}/brouillons/{id}"
local get_headers, post_headers = {}, {}
local seq = 0

submitted = 0
unexpected = 0
unexpected_by_step = {}
last_unexpected = ""

function init(args)
  service_path = "/" .. args[1] .. "/demarches/" .. args[2]
  form_path = service_path .. "/formulaire"
  get_headers, post_headers = flow_init(args, 3, names)
end

local function answers()
  -- A different subject per submission, a ~300-character question: a realistic request.
  local sujet = string.format("Question de charge %d-%d", id or 0, seq)
  local question = string.rep("Bonjour, quels sont les horaires d'ouverture de la mairie en été ? ", 5)
  return "_csrf=" .. csrf .. "&_brouillon=" .. urlencode(token) .. "&sujet=" .. urlencode(sujet)
    .. "&question=" .. urlencode(question) .. "&rappel=non&action=suivant"
end

-- Side-effect free: wrk may call it once more than it sends (to check the request).
function request()
  if state == GET_SERVICE then
    return wrk.format("GET", service_path, get_headers)
  elseif state == GET_FORM then
    return wrk.format("GET", form_path, get_headers)
  elseif state == POST_FORM then
    return wrk.format("POST", form_path, post_headers, answers())
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
  if state == GET_SERVICE then
    if status ~= 200 then return fail(status, "") end
    state = GET_FORM
  elseif state == GET_FORM then
    csrf = status == 200 and csrf_of(body)
    token = status == 200 and body and body:match('name="_brouillon" value="([0-9a-f]+)"')
    if not csrf or not token then return fail(status, "no _csrf or _brouillon in the page") end
    seq = seq + 1
    state = POST_FORM
  elseif state == POST_FORM then
    local d = status == 303 and location:match("^(.*/brouillons/[0-9a-f%-]+)/recapitulatif$")
    if not d then return fail(status, location) end
    draft = d
    state = GET_SUMMARY
  elseif state == GET_SUMMARY then
    local t = status == 200 and csrf_of(body)
    if not t then return fail(status, "no _csrf in the page") end
    csrf = t
    state = SEND
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
