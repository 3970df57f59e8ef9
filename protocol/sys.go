package protocol

// System notifications [IM-4.6].
const (
	// SysNotifyTopic is where accounts with the bridge role publish system
	// notifications [IM-4.6-1].
	SysNotifyTopic = "im/v1/sys/notify"
	// TypeSystem is the message type of system notifications; only bridges
	// may send it [IM-4.6-2].
	TypeSystem = "system"
)
