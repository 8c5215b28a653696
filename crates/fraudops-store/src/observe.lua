-- Records transactions and returns their feature windows, atomically (Redis runs a script alone). One call
-- holds the card parts and the terminal parts of events whose keys share a slot (Redis Cluster), or of a
-- whole batch (one Redis): a card's windows and its terminal's are independent, so the two parts of one
-- event may run on different shards.
--
-- Keys: per card part: the card (sorted set: "<units>:<micro remainder>:<tx id>" scored by time) [and its
--       v1 key when draining]; per terminal part: the terminal (sorted set: tx id scored by time: every
--       transaction seen there), its frauds (the same, those labelled fraud) [and their two v1 keys].
-- ARGV: [1] card parts, [2] terminal parts, [3] drain v1 (1/0), [4] seconds per day, [5..7] customer window
--       days, [8] terminal delay days, [9..11] terminal window days, [12] customer history kept s,
--       [13] terminal history kept s (each the longest reach plus a slack for late events), [14] customer key
--       TTL s, [15] terminal key TTL s; then per card part: time, units, remainder, tx id, record (1: record
--       it; 0: return its windows as if recorded and write nothing); then per terminal part: time, tx id,
--       record (1, 0, or "=k": as card part k of this call was, 1-based: the card decides whether a
--       transaction is recorded, and its terminal follows).
-- Returns per card part 10 integers: count x3, amount units x3, micro remainders x3 (windows in the order of
-- ARGV), then what was done: 0 recorded, 1 read only (asked), 2 read only (older than the card's reach);
-- then per terminal part 7: count x3, frauds x3, then 0 recorded, 1 read only (asked), 2 read only (below
-- what the terminal keeps: it would be pruned at once and changes no window). Sums stay integers below
-- 2^53, so exact.
--
-- Time is the caller's, so it is never trusted to delete anything: a key is pruned below the older of the
-- event's time and the newest time the key already holds (one event far in the future prunes nothing), and
-- an event whose customer windows reach below what may already have been pruned (the card's newest time
-- minus what is kept: only recorded transactions move it) is not recorded: its windows are no longer
-- complete, and recording it would change no later window. The caller refuses times ahead of its clock.
--
-- Draining v1 (a single Redis upgraded from layout v1): a v1 key still there is merged into its v2 key
-- (the same member has the same time in both) and deleted, on every touch, so an old scorer still writing
-- v1 during a rolling update loses nothing either.
local nc, nt = tonumber(ARGV[1]), tonumber(ARGV[2])
local drain_v1 = ARGV[3] == '1'
local day = tonumber(ARGV[4])
local cw = { tonumber(ARGV[5]) * day, tonumber(ARGV[6]) * day, tonumber(ARGV[7]) * day }
local delay = tonumber(ARGV[8]) * day
local tw = { tonumber(ARGV[9]) * day, tonumber(ARGV[10]) * day, tonumber(ARGV[11]) * day }
local c_keep, t_keep = tonumber(ARGV[12]), tonumber(ARGV[13])
local c_ttl, t_ttl = ARGV[14], ARGV[15]
local longest = math.max(cw[1], cw[2], cw[3])
local t_longest = delay + math.max(tw[1], tw[2], tw[3])
local out = {}
-- The newest time a sorted set holds, or nil when it is empty.
local function newest(key)
  local top = redis.call('ZRANGE', key, 0, 0, 'REV', 'WITHSCORES')
  if #top == 0 then return nil end
  return tonumber(top[2])
end
local ck_per, tk_per = drain_v1 and 2 or 1, drain_v1 and 4 or 2
local card_status = {}
for e = 0, nc - 1 do
  local a = 16 + 5 * e
  local t = tonumber(ARGV[a])
  local id = ARGV[a + 3]
  local record = ARGV[a + 4] == '1'
  local member = ARGV[a + 1] .. ':' .. ARGV[a + 2] .. ':' .. id
  local ck = KEYS[ck_per * e + 1]
  if drain_v1 then drain(ck, KEYS[ck_per * e + 2], c_ttl) end
  local c_new = newest(ck)
  -- Nothing above the card's newest time - keep was ever pruned; windows that reach below it are too old.
  local status = record and 0 or 1
  if c_new and t - longest < c_new - c_keep then
    status = 2
  end
  -- Forget what no window reaches, record this one, then sum (t - w, t] for each window.
  if status == 0 then
    if c_new then redis.call('ZREMRANGEBYSCORE', ck, '-inf', math.min(t, c_new) - c_keep) end
    redis.call('ZADD', ck, t, member)
    redis.call('EXPIRE', ck, c_ttl)
  end
  local rows = redis.call('ZRANGEBYSCORE', ck, '(' .. string.format('%d', t - longest), t, 'WITHSCORES')
  local cnt, units, rems = { 0, 0, 0 }, { 0, 0, 0 }, { 0, 0, 0 }
  for i = 1, #rows, 2 do
    local u, r = string.match(rows[i], '^(%d+):(%d+):')
    u, r = tonumber(u), tonumber(r)
    local ts = tonumber(rows[i + 1])
    for w = 1, 3 do
      if ts > t - cw[w] then
        cnt[w] = cnt[w] + 1
        units[w] = units[w] + u
        rems[w] = rems[w] + r
      end
    end
  end
  -- Read only: the windows include this transaction, as a recorded one's do (unless it is recorded).
  if status ~= 0 and tonumber(redis.call('ZSCORE', ck, member)) ~= t then
    local u, r = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
    for w = 1, 3 do
      cnt[w] = cnt[w] + 1
      units[w] = units[w] + u
      rems[w] = rems[w] + r
    end
  end
  for w = 1, 3 do out[#out + 1] = cnt[w] end
  for w = 1, 3 do out[#out + 1] = units[w] end
  for w = 1, 3 do out[#out + 1] = rems[w] end
  out[#out + 1] = status
  card_status[e + 1] = status
end
local tbase = 16 + 5 * nc
local kbase = ck_per * nc
for e = 0, nt - 1 do
  local a = tbase + 3 * e
  local t = tonumber(ARGV[a])
  local id = ARGV[a + 1]
  local flag = ARGV[a + 2]
  local record = flag == '1'
  if string.sub(flag, 1, 1) == '=' then
    record = card_status[tonumber(string.sub(flag, 2))] == 0
  end
  local k = kbase + tk_per * e
  local tk, fk = KEYS[k + 1], KEYS[k + 2]
  if drain_v1 then
    drain(tk, KEYS[k + 3], t_ttl)
    drain(fk, KEYS[k + 4], t_ttl)
  end
  local t_new = newest(tk)
  local status = record and 0 or 1
  -- Below what the terminal keeps: recorded, it would be pruned by the next event and count in no window
  -- of a transaction recent enough to have complete ones.
  if t_new and t < t_new - t_keep then
    status = 2
  end
  -- Count (t - delay - w, t - delay] before recording this one (it is never inside).
  if status == 0 and t_new then
    local cut = math.min(t, t_new) - t_keep
    redis.call('ZREMRANGEBYSCORE', tk, '-inf', cut)
    redis.call('ZREMRANGEBYSCORE', fk, '-inf', cut)
  end
  local hi = string.format('%d', t - delay)
  local nb, fr = {}, {}
  for w = 1, 3 do
    local lo = '(' .. string.format('%d', t - delay - tw[w])
    nb[w] = redis.call('ZCOUNT', tk, lo, hi)
    fr[w] = redis.call('ZCOUNT', fk, lo, hi)
  end
  if status == 0 then
    redis.call('ZADD', tk, t, id)
    redis.call('EXPIRE', tk, t_ttl)
  end
  for w = 1, 3 do out[#out + 1] = nb[w] end
  for w = 1, 3 do out[#out + 1] = fr[w] end
  out[#out + 1] = status
end
return out
