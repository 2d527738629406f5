// Package cluster makes one SBC node part of several that share state in
// Redis (or Valkey): the node's own entry, refreshed by a heartbeat, and
// the list of its peers for the admin API and for routing between nodes.
//
// Redis is a shared cache here, never the only copy of what the node needs
// to carry its calls: when Redis cannot be reached the node goes on with
// what it knows locally, raises an alarm (Status.RedisUp false, the
// sbc_cluster_redis_up gauge at 0, one log line), and writes its entry again
// when Redis returns. Data in Redis that is not what the SBC wrote (a key of
// the wrong type, a field that does not parse) is logged with its key and
// skipped; it never stops the node.
//
// Keys (all under the configured prefix, "sbc:" by default):
//
//	nodes          sorted set: node id → last heartbeat, Unix milliseconds
//	node:<id>      hash: internal_addr, state (active|draining), calls,
//	               started, updated (Unix ms); expires node_ttl after
//	               the last heartbeat
package cluster
