-- Records transactions and returns their feature windows, atomically (Redis runs a script alone). One call
-- holds the card parts and the terminal parts of events whose keys share a slot (Redis Cluster), or of a
-- whole batch (one Redis): a card's windows and its terminal's are independent, so the two parts of one
-- event may run on different shards.
--
-- Keys: per card part: the card (layout v3, a sorted set scored by time; see "Running totals" below) [and
-- the card's v2 key when draining, and its v1 key when draining v1 too]; per terminal part: the terminal
-- (sorted set: tx id scored by time: every transaction seen there), its frauds (the same, those labelled
-- fraud) [and their two v1 keys when draining v1].
-- ARGV: [1] card parts, [2] terminal parts, [3] drain: 0 nothing, 1 the cards' v2 keys (a cluster), 2 those
-- and every v1 key (one Redis), [4] seconds per day, [5..7] customer window days, [8] terminal delay days,
-- [9..11] terminal window days, [12] customer history kept s, [13] terminal history kept s (each the
-- longest reach plus a slack for late events), [14] customer key TTL s, [15] terminal key TTL s; then per
-- card part: time, units, remainder, tx id, record (1: record it; 0: return its windows as if recorded and
-- write nothing); then per terminal part: time, tx id, record (1, 0, or "=k": as card part k of this call
-- was, 1-based: the card decides whether a transaction is recorded, and its terminal follows).
-- Returns per card part 10 integers: count x3, amount units x3, micro remainders x3 (windows in the order of
-- ARGV), then what was done: 0 recorded, 1 read only (asked), 2 read only (older than the card's reach);
-- then per terminal part 7: count x3, frauds x3, then 0 recorded, 1 read only (asked), 2 read only (below
-- what the terminal keeps: it would be pruned at once and changes no window). Sums stay integers below
-- 2^53, so exact.
--
-- Running totals (layout v3): a card member is "<count>:<units>:<remainders>:<units>:<remainder>:<tx id>",
-- the first three the card's totals up to and including this transaction in Redis's order of the set (by
-- time, then by member: the count is zero-padded, so ties keep the order of their totals), the next two its
-- own amount. A window (t - w, t] is then the totals before the first member above t minus those before the
-- first member above t - w: two lookups (O(log n)) whatever the card's depth, and pruning old members
-- changes no difference. An event later than the card's newest (the usual case) appends; a late one adds
-- its amount to the totals of the few members after it.
--
-- Time is the caller's, so it is never trusted to delete anything: a key is pruned below the older of the
-- event's time and the newest time the key already holds (one event far in the future prunes nothing), and
-- an event whose customer windows reach below what may already have been pruned (the card's newest time
-- minus what is kept: only recorded transactions move it) is not recorded: its windows are no longer
-- complete, and recording it would change no later window. The caller refuses times ahead of its clock.
--
-- Draining older layouts: a v2 card key (members "<units>:<remainder>:<tx id>") or a v1 key still there is
-- merged into the v3 key (the card rebuilt with its totals) and deleted, on every touch, so an old scorer
-- still writing during a rolling update loses nothing; v1 terminal keys merge into v2 (`drain`).
local nc, nt = tonumber(ARGV[1]), tonumber(ARGV[2])
local drain_cards, drain_v1 = ARGV[3] ~= '0', ARGV[3] == '2'
local day = tonumber(ARGV[4])
local cw = { tonumber(ARGV[5]) * day, tonumber(ARGV[6]) * day, tonumber(ARGV[7]) * day }
local delay = tonumber(ARGV[8]) * day
local tw = { tonumber(ARGV[9]) * day, tonumber(ARGV[10]) * day, tonumber(ARGV[11]) * day }
local c_keep, t_keep = tonumber(ARGV[12]), tonumber(ARGV[13])
-- TTLs in ms for PEXPIRE: the scripts' own commands are then told apart from the clients' EXPIRE in INFO
-- commandstats (Redis counts a script's commands there too), so a benchmark can add up what a call costs.
local c_ttl = string.format('%d', tonumber(ARGV[14]) * 1000)
local t_ttl = string.format('%d', tonumber(ARGV[15]) * 1000)
local longest = math.max(cw[1], cw[2], cw[3])
local out = {}
-- The newest time a sorted set holds, or nil when it is empty.
local function newest(key)
  local top = redis.call('ZRANGE', key, 0, 0, 'REV', 'WITHSCORES')
  if #top == 0 then return nil end
  return tonumber(top[2])
end
-- A v3 card member's totals (count, units, remainders) and own amount (units, remainder).
local function totals(m)
  local c, u, r, ou, orr = string.match(m, '^(%d+):(%d+):(%d+):(%d+):(%d+):')
  return tonumber(c), tonumber(u), tonumber(r), tonumber(ou), tonumber(orr)
end
-- What identifies a card's transaction: "<units>:<remainder>:<tx id>" (v2's whole member).
local function own_part(m)
  return string.match(m, '^%d+:%d+:%d+:(.*)$')
end
local function card_member(c, u, r, own)
  return string.format('%015d:%d:%d:', c, u, r) .. own
end
-- The card's totals up to `bound` (inclusive). A card of up to 128 members is a listpack, which Redis
-- scans from one end to find a score, so the lookup starts from the end nearer the bound: the first member
-- above it from the oldest, or the last member at or below it from the newest (`from_newest`). With none
-- above it, the grand totals; with none at or below it, the totals before the oldest member.
local function totals_through(ck, bound, grand, from_newest)
  local b = string.format('%d', bound)
  if from_newest then
    local last = redis.call('ZRANGE', ck, b, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1)
    if #last > 0 then
      local c, u, r = totals(last[1])
      return { c, u, r }
    end
    local oldest = redis.call('ZRANGE', ck, 0, 0)
    if #oldest == 0 then return grand end
    local c, u, r, ou, orr = totals(oldest[1])
    return { c - 1, u - ou, r - orr }
  end
  local first = redis.call('ZRANGE', ck, '(' .. b, '+inf', 'BYSCORE', 'LIMIT', 0, 1)
  if #first == 0 then return grand end
  local c, u, r, ou, orr = totals(first[1])
  return { c - 1, u - ou, r - orr }
end
-- ZADD of many (score, member) pairs, in chunks (Lua's unpack has a stack limit).
local function zadd_all(key, pairs)
  for i = 1, #pairs, 512 do
    redis.call('ZADD', key, unpack(pairs, i, math.min(i + 511, #pairs)))
  end
end
-- Merges an older layout's card key ("<units>:<remainder>:<tx id>" by time) into the v3 key: the union,
-- ordered by time then member, rebuilt with its running totals.
local function drain_card(ck, old)
  if redis.call('EXISTS', old) == 0 then return end
  local seen, rows = {}, {}
  local function take(list, v3)
    for i = 1, #list, 2 do
      local own = v3 and own_part(list[i]) or list[i]
      local key = list[i + 1] .. ' ' .. own
      if not seen[key] then
        seen[key] = true
        rows[#rows + 1] = { tonumber(list[i + 1]), own }
      end
    end
  end
  take(redis.call('ZRANGE', ck, 0, -1, 'WITHSCORES'), true)
  take(redis.call('ZRANGE', old, 0, -1, 'WITHSCORES'), false)
  table.sort(rows, function(x, y)
    if x[1] ~= y[1] then return x[1] < y[1] end
    return x[2] < y[2]
  end)
  local pairs, c, u, r = {}, 0, 0, 0
  for _, row in ipairs(rows) do
    local ou, orr = string.match(row[2], '^(%d+):(%d+):')
    c, u, r = c + 1, u + tonumber(ou), r + tonumber(orr)
    pairs[#pairs + 1] = string.format('%d', row[1])
    pairs[#pairs + 1] = card_member(c, u, r, row[2])
  end
  redis.call('DEL', ck, old)
  zadd_all(ck, pairs)
  redis.call('PEXPIRE', ck, c_ttl)
end
local ck_per = 1 + (drain_cards and 1 or 0) + (drain_v1 and 1 or 0)
local tk_per = drain_v1 and 4 or 2
-- The shortest customer window: its range is read whole (a few members), the others by one lookup each.
local short = math.min(cw[1], cw[2], cw[3])
local card_status = {}
for e = 0, nc - 1 do
  local a = 16 + 5 * e
  local t = tonumber(ARGV[a])
  local ou, orr = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local own = ARGV[a + 1] .. ':' .. ARGV[a + 2] .. ':' .. ARGV[a + 3]
  local record = ARGV[a + 4] == '1'
  local ck = KEYS[ck_per * e + 1]
  if drain_cards then
    local old = { KEYS[ck_per * e + 2] }
    if drain_v1 then old[2] = KEYS[ck_per * e + 3] end
    if redis.call('EXISTS', unpack(old)) > 0 then
      for _, k in ipairs(old) do drain_card(ck, k) end
    end
  end
  -- The members above t - the shortest window: that window, whether this transaction is already there (a
  -- redelivery), those after it (whose totals a late transaction moves), and the card's newest. A few
  -- members: the busiest cards make about three transactions a day.
  -- Read from the newest down (see totals_through), turned into ascending order.
  local desc = redis.call('ZRANGE', ck, '+inf', '(' .. string.format('%d', t - short), 'BYSCORE', 'REV', 'WITHSCORES')
  local rows = {}
  for i = #desc - 1, 1, -2 do
    rows[#rows + 1] = desc[i]
    rows[#rows + 1] = desc[i + 1]
  end
  local c_new, grand = nil, { 0, 0, 0 }
  local top = rows
  if #rows == 0 then top = redis.call('ZRANGE', ck, -1, -1, 'WITHSCORES') end
  if #top > 0 then
    c_new = tonumber(top[#top])
    local c, u, r = totals(top[#top - 1])
    grand = { c, u, r }
  end
  -- Nothing above the card's newest time - keep was ever pruned; windows that reach below it are too old.
  local status = record and 0 or 1
  if c_new and t - longest < c_new - c_keep then
    status = 2
  end
  local through_t, recorded, after = grand, false, {}
  for i = 1, #rows, 2 do
    local s = tonumber(rows[i + 1])
    if s == t and own_part(rows[i]) == own then
      recorded = true
    elseif s > t then
      after[#after + 1] = rows[i]
      after[#after + 1] = rows[i + 1]
    end
  end
  if #after > 0 then
    local c, u, r, fu, fr = totals(after[1])
    through_t = { c - 1, u - fu, r - fr }
  end
  -- The windows as the store holds them, then this transaction in each (unless it is already recorded).
  local cnt, units, rems = {}, {}, {}
  for w = 1, 3 do
    local before = grand
    if cw[w] == short then
      if #rows > 0 then
        local c, u, r, fu, fr = totals(rows[1])
        before = { c - 1, u - fu, r - fr }
      end
    else
      -- Nearer the newest end when the window is shorter than half of what the card keeps.
      before = totals_through(ck, t - cw[w], grand, 2 * cw[w] < c_keep)
    end
    cnt[w] = through_t[1] - before[1]
    units[w] = through_t[2] - before[2]
    rems[w] = through_t[3] - before[3]
    if not recorded then
      cnt[w], units[w], rems[w] = cnt[w] + 1, units[w] + ou, rems[w] + orr
    end
  end
  -- Record: insert with its totals and move the later members' totals. Once per event day (and when the
  -- key is new) forget what no window reaches and set the TTL again: pruning only bounds memory (what is
  -- below the reach is in no window of an event that is not too old), so a day's slack costs 1/37 more.
  if status == 0 and not recorded then
    local pairs = { string.format('%d', t), card_member(through_t[1] + 1, through_t[2] + ou, through_t[3] + orr, own) }
    if #after > 0 then
      local old = {}
      for i = 1, #after, 2 do
        local c, u, r = totals(after[i])
        old[#old + 1] = after[i]
        pairs[#pairs + 1] = after[i + 1]
        pairs[#pairs + 1] = card_member(c + 1, u + ou, r + orr, own_part(after[i]))
      end
      for i = 1, #old, 512 do
        redis.call('ZREM', ck, unpack(old, i, math.min(i + 511, #old)))
      end
    end
    local new_day = c_new == nil or math.floor(t / day) ~= math.floor(c_new / day)
    if c_new and new_day then
      redis.call('ZREMRANGEBYSCORE', ck, '-inf', math.min(t, c_new) - c_keep)
    end
    zadd_all(ck, pairs)
    if new_day then redis.call('PEXPIRE', ck, c_ttl) end
  end
  for w = 1, 3 do out[#out + 1] = cnt[w] end
  for w = 1, 3 do out[#out + 1] = units[w] end
  for w = 1, 3 do out[#out + 1] = rems[w] end
  out[#out + 1] = status
  card_status[e + 1] = status
end
local tbase = 16 + 5 * nc
local kbase = ck_per * nc
local t_longest = math.max(tw[1], tw[2], tw[3])
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
  if drain_v1 and redis.call('EXISTS', KEYS[k + 3], KEYS[k + 4]) > 0 then
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
  -- Count (t - delay - w, t - delay] before recording this one (it is never inside): the transactions by
  -- ZCOUNT, the frauds (a few) read whole and counted here.
  local hi = t - delay
  local his = string.format('%d', hi)
  local nb, fr = {}, { 0, 0, 0 }
  for w = 1, 3 do
    nb[w] = redis.call('ZCOUNT', tk, '(' .. string.format('%d', hi - tw[w]), his)
  end
  local frauds = redis.call('ZRANGE', fk, '(' .. string.format('%d', hi - t_longest), his, 'BYSCORE', 'WITHSCORES')
  for i = 2, #frauds, 2 do
    local s = tonumber(frauds[i])
    for w = 1, 3 do
      if s > hi - tw[w] then fr[w] = fr[w] + 1 end
    end
  end
  -- Record; once per event hour (and when the key is new) prune and set the TTL again; the frauds only
  -- when the transactions' set had something to prune (every fraud is in it too: label.lua adds both).
  if status == 0 then
    local new_hour = t_new == nil or math.floor(t / 3600) ~= math.floor(t_new / 3600)
    if t_new and new_hour then
      local cut = math.min(t, t_new) - t_keep
      if redis.call('ZREMRANGEBYSCORE', tk, '-inf', cut) > 0 then
        redis.call('ZREMRANGEBYSCORE', fk, '-inf', cut)
      end
    end
    redis.call('ZADD', tk, t, id)
    if new_hour then redis.call('PEXPIRE', tk, t_ttl) end
  end
  for w = 1, 3 do out[#out + 1] = nb[w] end
  for w = 1, 3 do out[#out + 1] = fr[w] end
  out[#out + 1] = status
end
return out
