package sdk

// TestHooks reach into a client for tests; any may be nil.
type TestHooks struct {
	// DropEvent is called for each inbox event received; true drops it as
	// if it had been lost on the way.
	DropEvent func(Event) bool
	// BeforeSync is called before each sync request of the event processor.
	BeforeSync func(after int64)
	// AfterSync is called with each sync result before it is applied.
	AfterSync func(after int64, res SyncResult)
}

// SetTestHooks installs h in cfg.
func SetTestHooks(cfg *Config, h TestHooks) {
	cfg.hooks = &testHooks{dropEvent: h.DropEvent, beforeSync: h.BeforeSync, afterSync: h.AfterSync}
}
