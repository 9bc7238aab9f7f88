-- Argo CD health of a minio.min.io/Tenant reconciled by hanzo-s3-operator, read from the
-- operator's conditions rather than from currentState strings:
--   Healthy      Ready is True for the generation the operator last saw, which is the current one
--   Degraded     Invalid, Stalled (another Tenant owns the namespace, a StatefulSet is not the
--                operator's) or Degraded (it had been Ready; servers down or the S3 cluster not
--                answering) is True
--   Progressing  anything else: a newer generation not seen yet, servers starting, waiting for
--                the configuration Secret (the message names it), a step retried after an error
--   Missing      no status at all: the operator has not reconciled it (is it running?)
-- Install: see docs/gitops.md (argocd-cm, key resource.customizations.health.minio.min.io_Tenant).
local hs = {}
if obj.status == nil then
  hs.status = "Missing"
  hs.message = "No status yet: the operator has not reconciled this Tenant (is hanzo-s3-operator running?)"
  return hs
end

local function condition(type)
  if obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function message(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
  return hs
end

for _, type in ipairs({"Invalid", "Stalled", "Degraded"}) do
  local c = condition(type)
  if c ~= nil and c.status == "True" then
    hs.status = "Degraded"
    hs.message = message(c, type)
    return hs
  end
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message(ready, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = message(ready, obj.status.currentState or "Reconciling")
return hs
