-- Argo CD health check for messaging.senderops.io/WhatsAppSender. Argo CD runs it with the
-- object in the global `obj` and reads `status` and `message` from the table it returns.
-- Install it with argocd-cm.yaml (the same script). Argo CD's Lua is 5.1 (gopher-lua): no goto,
-- no integer division, no bitwise operators. tests/it/gitops.rs runs it on sample senders.
--
--   Suspended    spec.suspend is true: the operator leaves the sender alone
--   Progressing  the operator has not yet reported on this generation of the spec
--   Degraded     Stalled=True: it needs someone to fix something (the condition says what)
--   Healthy      Ready=True: ONLINE at Twilio and matching the spec
--   Progressing  anything else: registering, verifying, retrying a Twilio error
local hs = {}

local function condition(conditions, type)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local generation = obj.metadata.generation
local status = obj.status

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: the operator makes no Twilio calls for this sender"
  return hs
end

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a status"
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "The operator has not yet observed generation " .. tostring(generation) ..
    " of the spec (status describes generation " .. tostring(status.observedGeneration or "none") .. ")"
  return hs
end

local stalled = condition(status.conditions, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

local ready = condition(status.conditions, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = describe(ready, "Waiting for the sender to be Ready")
return hs
