// Package delivery is only a folder: it holds what gets committed events to
// devices — local (push to the devices connected to this node), cluster
// (events between nodes over NATS), routes (the cluster's routing table).
package delivery
