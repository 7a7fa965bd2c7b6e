package admin

import (
	"cmp"
	"slices"
	"time"
)

// The JSON documents of the /api endpoints. They are what the observer page
// and the enginekit ps and status commands read; Client decodes them.

// Process is one process, as /api/processes lists it and /api/process/{pid}
// shows it (with State).
type Process struct {
	PID         string    `json:"pid"`             // "<system.N>"
	Name        string    `json:"name,omitempty"`  // registered name, if any
	Child       string    `json:"child,omitempty"` // "supervisor/child ID" when a supervisor of the Source runs it
	Proxy       string    `json:"proxy,omitempty"` // for the proxy of a foreign engine: the peer router it was learned from
	Status      string    `json:"status"`          // idle, running or exiting
	MailboxLen  int       `json:"mailbox"`         // messages waiting
	Handled     uint64    `json:"handled"`         // messages handled since it started
	InCallback  Duration  `json:"in_callback"`     // time in the current callback, 0 when idle
	Links       []string  `json:"links,omitempty"`
	Monitors    []string  `json:"monitors,omitempty"`
	MonitoredBy []string  `json:"monitored_by,omitempty"`
	TrapExits   bool      `json:"trap_exits,omitempty"`
	Started     time.Time `json:"started"`

	// State is what the process reported about itself
	// (genserver.StatusReporter, or its fields), for /api/process/{pid}
	// only; StateError says why there is none (it timed out, the process
	// exited).
	State      string `json:"state,omitempty"`
	StateError string `json:"state_error,omitempty"`
}

// Processes is the document of /api/processes.
type Processes struct {
	System string    `json:"system"`
	Time   time.Time `json:"time"`
	// Total is the number of live processes; Processes may hold fewer
	// (?q= and ?limit=).
	Total     int       `json:"total"`
	Processes []Process `json:"processes"`
}

// Tree is one supervisor, as /api/tree shows it.
type Tree struct {
	Name             string   `json:"name"`
	Strategy         string   `json:"strategy"`
	MaxRestarts      int      `json:"max_restarts"`
	Period           Duration `json:"period"`
	RestartsInPeriod int      `json:"restarts_in_period"` // the intensity used so far
	Children         []Child  `json:"children"`
}

// Child is one child of a supervisor.
type Child struct {
	ID       string `json:"id"`
	Restart  string `json:"restart"` // permanent, transient or temporary
	Running  bool   `json:"running"`
	PID      string `json:"pid,omitempty"` // when the child is a running genserver
	Restarts int    `json:"restarts"`
	Sub      *Tree  `json:"sub,omitempty"` // when the child is a supervisor
}

// Trees is the document of /api/tree.
type Trees struct {
	Time  time.Time `json:"time"`
	Trees []Tree    `json:"trees"`
}

// Connection is one live connection of the transport.
type Connection struct {
	Peer       string            `json:"peer"`             // the peer's router address
	Remote     string            `json:"remote,omitempty"` // the peer's endpoint
	Auth       string            `json:"auth,omitempty"`
	UpSince    time.Time         `json:"up_since,omitzero"`
	QueueBytes int               `json:"queue_bytes"`
	Stats      map[string]uint64 `json:"stats"` // frames_in, bytes_out, dropped_replay, ...
}

// Peer is a peer router and the engines learned from it.
type Peer struct {
	Router  string   `json:"router"`
	Engines []string `json:"engines"`
}

// Connections is the document of /api/connections.
type Connections struct {
	Time        time.Time    `json:"time"`
	Router      string       `json:"router"` // ours
	Connections []Connection `json:"connections"`
	Peers       []Peer       `json:"peers"`
}

// Stats is the document of /api/stats: the counters, in snake_case, and
// the drops by cause.
type Stats struct {
	Time      time.Time         `json:"time"`
	System    string            `json:"system,omitempty"`
	Processes map[string]int    `json:"processes"` // by status, and "total"
	Mailboxes MailboxSummary    `json:"mailboxes"`
	Transport map[string]uint64 `json:"transport,omitempty"`
	Network   map[string]uint64 `json:"network,omitempty"` // summed over the live connections
	Drops     map[string]uint64 `json:"drops"`             // by cause, every cause present
	Restarts  int               `json:"restarts"`          // summed over the supervision trees
}

// MailboxSummary aggregates mailbox lengths over all processes.
type MailboxSummary struct {
	Total   int    `json:"total"`   // messages waiting, all processes
	Max     int    `json:"max"`     // the longest mailbox
	MaxPID  string `json:"max_pid"` // whose it is
	MaxName string `json:"max_name,omitempty"`
	// MaxChild is its supervisor child path, when it has one.
	MaxChild string `json:"max_child,omitempty"`
}

// Duration is a time.Duration that reads and writes as a string ("1.5s")
// in JSON, and as nanoseconds when given a number.
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what MarshalText writes.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// SortProcesses sorts ps in place by key: "mailbox" (longest first),
// "handled" (most first), "name" (by supervisor child path or registered
// name, unnamed last, then by PID) or
// "pid" (by PID number). It reports whether key is one of those.
func SortProcesses(ps []Process, key string) bool {
	byPID := func(a, b Process) int { return cmp.Compare(pidNumber(a.PID), pidNumber(b.PID)) }
	var f func(a, b Process) int
	switch key {
	case "mailbox":
		f = func(a, b Process) int {
			return cmp.Or(cmp.Compare(b.MailboxLen, a.MailboxLen), cmp.Compare(b.Handled, a.Handled), byPID(a, b))
		}
	case "handled":
		f = func(a, b Process) int {
			return cmp.Or(cmp.Compare(b.Handled, a.Handled), cmp.Compare(b.MailboxLen, a.MailboxLen), byPID(a, b))
		}
	case "name":
		f = func(a, b Process) int {
			an, bn := cmp.Or(a.Child, a.Name), cmp.Or(b.Child, b.Name)
			if (an == "") != (bn == "") {
				if an == "" {
					return 1
				}
				return -1
			}
			return cmp.Or(cmp.Compare(an, bn), byPID(a, b))
		}
	case "pid":
		f = byPID
	default:
		return false
	}
	slices.SortStableFunc(ps, f)
	return true
}

// pidNumber is the N of "<system.N>", or 0.
func pidNumber(pid string) uint64 {
	var n uint64
	i := len(pid) - 1
	if i >= 0 && pid[i] == '>' {
		i--
	}
	mul := uint64(1)
	for ; i >= 0 && pid[i] >= '0' && pid[i] <= '9'; i-- {
		n += uint64(pid[i]-'0') * mul
		mul *= 10
	}
	return n
}
