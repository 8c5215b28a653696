-- Prepended to observe.lua and label.lua (scripts.rs): drains a layout-v1 key into its v2 key. A v1 key
-- still there is merged into the v2 key (the same member has the same time in both, so MAX keeps it as it
-- is) and deleted, on every touch: an old scorer still writing v1 during a rolling update loses nothing.
-- The v2 key's TTL (ms) is set again (ZUNIONSTORE drops it).
local function drain(v2, v1, ttl)
  if redis.call('EXISTS', v1) == 1 then
    redis.call('ZUNIONSTORE', v2, 2, v2, v1, 'AGGREGATE', 'MAX')
    redis.call('DEL', v1)
    redis.call('PEXPIRE', v2, ttl)
  end
end
