-- Complete citizen submissions of a form without a summary page, as a browser without
-- JavaScript makes them: the issue's "form GET, POST".
--
--   1. GET  /{tenant}/demarches/{service}/formulaire      the form page (its `_csrf` and the
--                                                          `_brouillon` nonce its draft id derives from)
--   2. POST /{tenant}/demarches/{service}/formulaire      303 → /compte/demandes/{id}?envoye=1,
--                                                          sent once the transaction is committed
--
--   wrk -t C -c C -d D -s bench/load/send.lua http://127.0.0.1:PORT/ -- TENANT SERVICE COOKIE...
--
-- As submit.lua: one connection per wrk thread (-t equal to -c), COOKIEs of logged-in citizens
-- (thread i uses cookie i mod n), unexpected answers counted by step. The answers are those of
-- the "signalement" service (a problem report; its photo is optional).

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local GET_FORM, SEND = 1, 2
local names = { "form_page", "send" }

local path
local state = GET_FORM
local csrf, token = nil, nil
local get_headers, post_headers = {}, {}
local seq = 0

submitted = 0
unexpected = 0
unexpected_by_step = {}
last_unexpected = ""

function init(args)
  path = "/" .. args[1] .. "/demarches/" .. args[2] .. "/formulaire"
  get_headers, post_headers = flow_init(args, 3, names)
end

local function answers()
  -- A different description per report, about 200 characters: a realistic report.
  local description = string.format("Signalement de charge %d-%d : ", id or 0, seq)
    .. string.rep("lampadaire éteint depuis trois jours au carrefour, ", 3)
  return "_csrf=" .. csrf .. "&_brouillon=" .. urlencode(token) .. "&action=envoyer"
    .. "&categorie=eclairage&description=" .. urlencode(description)
    .. "&adresse.street=" .. urlencode("3 rue de la Lys")
    .. "&adresse.postcode=45130&adresse.city=" .. urlencode("Saint-Aubin-sur-Lys")
    .. "&precision_lieu=" .. urlencode("devant la boulangerie")
end

-- Side-effect free: wrk may call it once more than it sends (to check the request).
function request()
  if state == GET_FORM then
    return wrk.format("GET", path, get_headers)
  else
    return wrk.format("POST", path, post_headers, answers())
  end
end

local function fail(status, detail)
  unexpected = unexpected + 1
  unexpected_by_step[state] = unexpected_by_step[state] + 1
  last_unexpected = names[state] .. ": " .. status .. " " .. (detail or "")
  state = GET_FORM
end

function response(status, headers, body)
  count_status(status)
  if state == GET_FORM then
    csrf = status == 200 and csrf_of(body)
    token = status == 200 and body and body:match('name="_brouillon" value="([0-9a-f]+)"')
    if not csrf or not token then return fail(status, "no _csrf or _brouillon in the page") end
    seq = seq + 1
    state = SEND
  else
    local location = header(headers, "location") or ""
    if status ~= 303 or not location:match("^/compte/demandes/[0-9a-f%-]+%?envoye=1$") then
      return fail(status, location)
    end
    submitted = submitted + 1
    state = GET_FORM
  end
end

function extra_report(report)
  flow_report(report, names)
end
