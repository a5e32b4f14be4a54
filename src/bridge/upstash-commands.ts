/**
 * The commands Upstash serves, as its compatibility table lists them: the bridge serves these and refuses
 * everything else, so a command that works locally also works against Upstash.
 *
 * Source: "Redis® API Compatibility", https://upstash.com/docs/redis/overall/rediscompatibility, the table
 * as published in https://github.com/upstash/docs (file redis/overall/rediscompatibility.mdx, commit
 * e9840f79d0731708a448bc4a58bfc222cfec4d20), read on 2026-11-29. The page says Upstash supports the Redis
 * protocol "up to version 6.2"; later versions of the page list more commands as Upstash adds them: update
 * this list from the page when a needed command is missing, with the new date.
 *
 * Being listed is necessary, not sufficient: the bridge still refuses listed commands that block, stream
 * or change the connection every request shares (see `refusalReason` in commands.ts).
 */

/** Commands served with any arguments, grouped as the table groups them. */
export const UPSTASH_COMMANDS: Readonly<Record<string, readonly string[]>> = {
  String: [
    ...["APPEND", "DECR", "DECRBY", "GET", "GETDEL", "GETEX", "GETRANGE", "GETSET", "INCR", "INCRBY"],
    ...["INCRBYFLOAT", "MGET", "MSET", "MSETNX", "PSETEX", "SET", "SETEX", "SETNX", "SETRANGE", "STRLEN"],
  ],
  Bitmap: ["BITCOUNT", "BITFIELD", "BITFIELD_RO", "BITOP", "BITPOS", "GETBIT", "SETBIT"],
  Hash: [
    ...["HDEL", "HEXISTS", "HGET", "HGETALL", "HINCRBY", "HINCRBYFLOAT", "HKEYS", "HLEN", "HMGET", "HMSET"],
    ...["HSCAN", "HSET", "HSETNX", "HSTRLEN", "HRANDFIELD", "HVALS"],
  ],
  List: [
    ...["BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "LINDEX", "LINSERT", "LLEN", "LMOVE", "LMPOP"],
    ...["LPOP", "LPOS", "LPUSH", "LPUSHX", "LRANGE", "LREM", "LSET", "LTRIM", "RPOP", "RPOPLPUSH", "RPUSH"],
    "RPUSHX",
  ],
  Set: [
    ...["SADD", "SCARD", "SDIFF", "SDIFFSTORE", "SINTER", "SINTERCARD", "SINTERSTORE", "SISMEMBER"],
    ...["SMEMBERS", "SMISMEMBER", "SMOVE", "SPOP", "SRANDMEMBER", "SREM", "SSCAN", "SUNION", "SUNIONSTORE"],
  ],
  SortedSet: [
    ...["BZMPOP", "BZPOPMAX", "BZPOPMIN", "ZADD", "ZCARD", "ZCOUNT", "ZDIFF", "ZDIFFSTORE", "ZINCRBY"],
    ...["ZINTER", "ZINTERCARD", "ZINTERSTORE", "ZLEXCOUNT", "ZMPOP", "ZMSCORE", "ZPOPMAX", "ZPOPMIN"],
    ...["ZRANDMEMBER", "ZRANGE", "ZRANGESTORE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK", "ZREM"],
    ...["ZREMRANGEBYLEX", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYLEX"],
    ...["ZREVRANGEBYSCORE", "ZREVRANK", "ZSCAN", "ZSCORE", "ZUNION", "ZUNIONSTORE"],
  ],
  Geo: [
    ...["GEOADD", "GEODIST", "GEOHASH", "GEOPOS", "GEORADIUS", "GEORADIUS_RO", "GEORADIUSBYMEMBER"],
    ...["GEORADIUSBYMEMBER_RO", "GEOSEARCH", "GEOSEARCHSTORE"],
  ],
  HyperLogLog: ["PFADD", "PFCOUNT", "PFMERGE"],
  Scripting: ["EVAL", "EVALSHA"],
  PubSub: ["SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "PUBLISH", "PUBSUB"],
  Transactions: ["DISCARD", "EXEC", "MULTI", "UNWATCH", "WATCH"],
  Generic: [
    ...["COPY", "DEL", "DUMP", "EXISTS", "EXPIRE", "EXPIREAT", "EXPIRETIME", "KEYS", "PERSIST", "PEXPIRE"],
    ...["PEXPIREAT", "PEXPIRETIME", "PTTL", "RANDOMKEY", "RENAME", "RENAMENX", "RESTORE", "SCAN", "TOUCH"],
    ...["TTL", "TYPE", "UNLINK"],
  ],
  Connection: ["AUTH", "HELLO", "ECHO", "PING", "QUIT", "RESET", "SELECT"],
  Server: ["ACL", "DBSIZE", "FLUSHALL", "FLUSHDB", "MONITOR", "TIME"],
  JSON: [
    ...["JSON.ARRAPPEND", "JSON.ARRINSERT", "JSON.ARRINDEX", "JSON.ARRLEN", "JSON.ARRPOP", "JSON.ARRTRIM"],
    ...["JSON.CLEAR", "JSON.DEL", "JSON.FORGET", "JSON.GET", "JSON.MGET", "JSON.NUMINCRBY", "JSON.NUMMULTBY"],
    ...["JSON.OBJKEYS", "JSON.OBJLEN", "JSON.RESP", "JSON.SET", "JSON.STRAPPEND", "JSON.STRLEN"],
    ...["JSON.TOGGLE", "JSON.TYPE"],
  ],
  Streams: [
    ...["XACK", "XADD", "XAUTOCLAIM", "XCLAIM", "XDEL", "XGROUP", "XLEN", "XPENDING", "XRANGE", "XREAD"],
    ...["XREADGROUP", "XREVRANGE", "XTRIM"],
  ],
};

/** Commands the table lists with some subcommands only (`XINFO GROUPS`, not `XINFO STREAM`). */
export const UPSTASH_SUBCOMMANDS: Readonly<Record<string, readonly string[]>> = {
  SCRIPT: ["EXISTS", "LOAD", "FLUSH"],
  XINFO: ["GROUPS", "CONSUMERS"],
};
