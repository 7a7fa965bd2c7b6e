package supervisor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/thejerf/suture/v4"
)

func TestLogEvents(t *testing.T) {
	var buf bytes.Buffer
	log := LogEvents(zerolog.New(&buf))
	for _, tc := range []struct {
		event Event
		want  map[string]any
	}{{
		ChildStarted{Supervisor: "s", Child: "c", Restarts: 2},
		map[string]any{"level": "info", "supervisor": "s", "child": "c", "restarts": 2.0, "message": "child started"},
	}, {
		ChildExited{Supervisor: "s", Child: "c", Err: errBoom, Action: ActionRestart},
		map[string]any{"level": "error", "supervisor": "s", "child": "c", "error": "boom", "action": "restart", "message": "child exited"},
	}, {
		ChildExited{Supervisor: "s", Child: "c", Action: ActionKeep},
		map[string]any{"level": "info", "supervisor": "s", "child": "c", "action": "keep", "message": "child exited"},
	}, {
		ChildExited{Supervisor: "s", Child: "c", Err: errDrained, Action: ActionKeep},
		map[string]any{"level": "info", "supervisor": "s", "child": "c", "error": "genserver: shutdown: drained", "action": "keep", "message": "child exited"},
	}, {
		ChildIgnored{Supervisor: "s", Child: "c"},
		map[string]any{"level": "info", "supervisor": "s", "child": "c", "message": "child ignored its start"},
	}, {
		ChildStopped{Supervisor: "s", Child: "c"},
		map[string]any{"level": "debug", "supervisor": "s", "child": "c", "message": "child stopped"},
	}, {
		StopTimeout{Supervisor: "s", Child: "c", Timeout: 2 * time.Second},
		map[string]any{"level": "warn", "supervisor": "s", "child": "c", "timeout": 2000.0, "message": "child did not stop in time; left running"},
	}, {
		StartFailed{Supervisor: "s", Child: "c", Err: &PanicError{Value: "x", Stack: []byte("stack")}},
		map[string]any{"level": "error", "supervisor": "s", "child": "c", "error": "panic: x", "stack": "stack", "message": "child failed to start"},
	}, {
		SupervisorFailed{Supervisor: "s", Err: errBoom},
		map[string]any{"level": "error", "supervisor": "s", "error": "boom", "message": "supervisor failed"},
	}} {
		buf.Reset()
		log(tc.event)
		var got map[string]any
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%v: %v: %s", tc.event, err, buf.Bytes())
		}
		if !equalJSON(got, tc.want) {
			t.Errorf("%v:\ngot  %v\nwant %v", tc.event, got, tc.want)
		}
	}
}

func TestLogSutureEvents(t *testing.T) {
	var buf bytes.Buffer
	log := LogSutureEvents(zerolog.New(&buf))
	log(suture.EventServiceTerminate{SupervisorName: "s", ServiceName: "w", Err: errBoom, Restarting: true})
	log(suture.EventServicePanic{SupervisorName: "s", ServiceName: "w", PanicMsg: "x", Stacktrace: "stack"})
	log(suture.EventStopTimeout{SupervisorName: "s", ServiceName: "w"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []map[string]any{
		{"level": "error", "message": "service terminated", "supervisor_name": "s", "service_name": "w", "error": "boom", "restarting": true},
		{"level": "error", "message": "service panicked", "supervisor_name": "s", "service_name": "w", "panic_msg": "x", "stacktrace": "stack"},
		{"level": "warn", "message": "service did not stop in time", "supervisor_name": "s", "service_name": "w"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatal(err)
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, got[k], v)
			}
		}
	}
}

func equalJSON(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestEventStrings(t *testing.T) {
	for _, tc := range []struct {
		event Event
		want  string
	}{
		{ChildStarted{Supervisor: "s", Child: "c"}, `supervisor "s": child "c" started`},
		{ChildStarted{Supervisor: "s", Child: "c", Restarts: 1}, `supervisor "s": child "c" restarted (restarts: 1)`},
		{ChildExited{Supervisor: "s", Child: "c", Err: errBoom, Action: ActionEscalate}, `supervisor "s": child "c" exited with error: boom (action: escalate)`},
		{ChildExited{Supervisor: "s", Child: "c", Action: ActionKeep}, `supervisor "s": child "c" exited normally (action: keep)`},
		{ChildStopped{Supervisor: "s", Child: "c"}, `supervisor "s": child "c" stopped`},
		{ChildIgnored{Supervisor: "s", Child: "c"}, `supervisor "s": child "c" ignored its start`},
		{StopTimeout{Supervisor: "s", Child: "c", Timeout: time.Second}, `supervisor "s": child "c" did not stop within 1s; left running`},
		{StartFailed{Supervisor: "s", Child: "c", Err: errBoom}, `supervisor "s": child "c" failed to start: boom`},
		{SupervisorFailed{Supervisor: "s", Err: errBoom}, `supervisor "s" failed: boom`},
	} {
		if got := tc.event.String(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}
