// Package cluster tests SBC nodes running as one cluster, as operators
// deploy them (configs/cluster-node.yaml): a real redis-server and a real
// PostgreSQL started by the tests, nodes in-process on 127.0.0.11–13, a
// browser (JsSIP in headless Chromium) and SIPp as the endpoints.
//
// Addresses: nodes 127.0.0.11, .12, .13; Redis 127.0.0.15; the carrier
// (SIPp) 127.0.0.16; an attacker 127.0.0.17.
package cluster
