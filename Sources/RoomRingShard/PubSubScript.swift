/// The Lua script that accepts one chat.
enum PubSubScript {
    /// KEYS: counter, stream, dedup hash, dedup FIFO, stream bytes. ARGV: channel, dedup field ("" for none), frame
    /// head, frame tail, origin, history length, dedup entries, TTL in ms, history bytes. Returns `{1, seq}` when
    /// accepted, `{0, seq}` for a resend of an accepted `(client, id)`.
    ///
    /// History is bounded like a sticky room's: by count and by bytes (the frames' length), oldest first, always
    /// keeping the newest message.
    static let publish = """
        if redis.call('EXISTS', KEYS[1]) == 0 then
          redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
        end
        if ARGV[2] ~= '' then
          local seen = redis.call('HGET', KEYS[3], ARGV[2])
          if seen then return {0, tonumber(seen)} end
        end
        local seq = redis.call('INCR', KEYS[1])
        local frame = ARGV[3] .. seq .. ARGV[4]
        redis.call('XADD', KEYS[2], seq .. '-0', 'f', frame)
        local bytes = redis.call('INCRBY', KEYS[5], #frame)
        local length = redis.call('XLEN', KEYS[2])
        while length > 1 and (length > tonumber(ARGV[6]) or bytes > tonumber(ARGV[9])) do
          local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
          redis.call('XDEL', KEYS[2], oldest[1])
          bytes = redis.call('INCRBY', KEYS[5], -#oldest[2][2])
          length = length - 1
        end
        if ARGV[2] ~= '' and tonumber(ARGV[7]) > 0 then
          redis.call('HSET', KEYS[3], ARGV[2], seq)
          if redis.call('RPUSH', KEYS[4], ARGV[2]) > tonumber(ARGV[7]) then
            redis.call('HDEL', KEYS[3], redis.call('LPOP', KEYS[4]))
          end
          redis.call('PEXPIRE', KEYS[3], ARGV[8])
          redis.call('PEXPIRE', KEYS[4], ARGV[8])
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[8])
        redis.call('PEXPIRE', KEYS[2], ARGV[8])
        redis.call('PEXPIRE', KEYS[5], ARGV[8])
        redis.call('PUBLISH', ARGV[1], seq .. ' ' .. ARGV[5] .. ' ' .. frame)
        return {1, seq}
        """
}
