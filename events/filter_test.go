package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/enginekit/enginekit/events"
)

var order = events.Event{
	Topic: "orders.created",
	Attrs: []events.Attr{{"region", "eu-west"}, {"tier", "gold"}, {"note", ""}},
}

func TestFilterMatch(t *testing.T) {
	yes, no := events.All(), events.Nothing()
	tests := []struct {
		name string
		f    events.Filter
		want bool
	}{
		{"zero", events.Filter{}, false},
		{"Nothing", no, false},
		{"All", yes, true},

		{"Topic exact", events.Topic("orders.created"), true},
		{"Topic other", events.Topic("orders.deleted"), false},
		{"Topic is not a prefix match", events.Topic("orders"), false},
		{"Topic longer", events.Topic("orders.created.eu"), false},

		{"TopicPrefix", events.TopicPrefix("orders."), true},
		{"TopicPrefix whole topic", events.TopicPrefix("orders.created"), true},
		{"TopicPrefix longer than topic", events.TopicPrefix("orders.created."), false},
		{"TopicPrefix other", events.TopicPrefix("metrics."), false},
		{"TopicPrefix empty", events.TopicPrefix(""), true},

		{"AttrEquals", events.AttrEquals("region", "eu-west"), true},
		{"AttrEquals other value", events.AttrEquals("region", "eu"), false},
		{"AttrEquals missing key", events.AttrEquals("zone", "eu-west"), false},
		{"AttrEquals empty value", events.AttrEquals("note", ""), true},
		{"AttrEquals empty value, missing key", events.AttrEquals("zone", ""), false},

		{"AttrPrefix", events.AttrPrefix("region", "eu-"), true},
		{"AttrPrefix other", events.AttrPrefix("region", "us-"), false},
		{"AttrPrefix missing key", events.AttrPrefix("zone", "eu-"), false},
		{"AttrPrefix empty: key present", events.AttrPrefix("tier", ""), true},
		{"AttrPrefix empty: key missing", events.AttrPrefix("zone", ""), false},

		{"AttrOneOf", events.AttrOneOf("tier", "silver", "gold"), true},
		{"AttrOneOf none", events.AttrOneOf("tier", "silver", "bronze"), false},
		{"AttrOneOf missing key", events.AttrOneOf("zone", "gold"), false},
		{"AttrOneOf empty value", events.AttrOneOf("note", "x", ""), true},

		{"And all true", events.And(yes, events.Topic("orders.created"), events.AttrEquals("tier", "gold")), true},
		{"And one false", events.And(yes, events.Topic("orders.created"), events.AttrEquals("tier", "silver")), false},
		{"And first false", events.And(no, yes), false},
		{"And empty", events.And(), true},
		{"And single", events.And(yes), true},

		{"Or one true", events.Or(no, events.AttrEquals("tier", "gold")), true},
		{"Or none true", events.Or(no, events.Topic("x"), events.AttrEquals("tier", "silver")), false},
		{"Or empty", events.Or(), false},
		{"Or single", events.Or(yes), true},

		{"Not true", events.Not(yes), false},
		{"Not false", events.Not(no), true},
		{"Not Not", events.Not(events.Not(events.Topic("orders.created"))), true},
		{"Not zero filter", events.Not(events.Filter{}), true},

		{"nested", events.Or(
			events.And(events.TopicPrefix("metrics."), events.AttrEquals("tier", "gold")),
			events.And(events.TopicPrefix("orders."), events.Not(events.AttrOneOf("region", "us-east", "us-west"))),
		), true},
		{"nested false", events.And(
			events.TopicPrefix("orders."),
			events.Or(events.AttrPrefix("region", "us-"), events.Not(events.AttrPrefix("tier", ""))),
		), false},
		{"zero filter operand", events.Or(events.Filter{}, events.Topic("orders.created")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			ev := order
			if got := tt.f.Match(&ev); got != tt.want {
				t.Errorf("%v.Match = %v, want %v", tt.f, got, tt.want)
			}
			// Round trip: the decoded spec means the same.
			b, err := tt.f.MarshalCBOR()
			if err != nil {
				t.Fatalf("MarshalCBOR: %v", err)
			}
			g, err := events.DecodeFilter(b)
			if err != nil {
				t.Fatalf("DecodeFilter: %v", err)
			}
			if !g.Equal(tt.f) || g.Match(&ev) != tt.want || g.String() != tt.f.String() {
				t.Errorf("decoded %v, want %v", g, tt.f)
			}
		})
	}
}

func TestFilterMatchEventWithoutAttrs(t *testing.T) {
	ev := events.Event{Topic: "t"}
	for _, f := range []events.Filter{
		events.AttrEquals("k", ""), events.AttrPrefix("k", ""), events.AttrOneOf("k", ""),
	} {
		if f.Match(&ev) {
			t.Errorf("%v matched an event without attributes", f)
		}
	}
	if !events.Not(events.AttrPrefix("k", "")).Match(&ev) {
		t.Error("Not(has k) did not match an event without k")
	}
}

// chain nests f in n Nots; the result has depth n+1 and n+1 nodes.
func chain(f events.Filter, n int) events.Filter {
	for range n {
		f = events.Not(f)
	}
	return f
}

func leaves(n int) []events.Filter {
	out := make([]events.Filter, n)
	for i := range out {
		out[i] = events.Topic("t")
	}
	return out
}

func TestFilterValidate(t *testing.T) {
	long := strings.Repeat("x", events.MaxFilterString)
	tooLong := long + "x"
	values := func(n int, v string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	tests := []struct {
		name string
		f    events.Filter
		want error // nil: valid
	}{
		{"empty topic", events.Topic(""), events.ErrBadFilter},
		{"empty key AttrEquals", events.AttrEquals("", "v"), events.ErrBadFilter},
		{"empty key AttrPrefix", events.AttrPrefix("", "v"), events.ErrBadFilter},
		{"empty key AttrOneOf", events.AttrOneOf("", "v"), events.ErrBadFilter},
		{"empty one-of", events.AttrOneOf("k"), events.ErrBadFilter},
		{"one-of at limit", events.AttrOneOf("k", values(events.MaxOneOf, "v")...), nil},
		{"one-of over limit", events.AttrOneOf("k", values(events.MaxOneOf+1, "v")...), events.ErrFilterTooLarge},
		{"string at limit", events.Topic(long), nil},
		{"topic too long", events.Topic(tooLong), events.ErrFilterTooLarge},
		{"prefix too long", events.TopicPrefix(tooLong), events.ErrFilterTooLarge},
		{"key too long", events.AttrEquals(tooLong, "v"), events.ErrFilterTooLarge},
		{"value too long", events.AttrEquals("k", tooLong), events.ErrFilterTooLarge},
		{"one-of value too long", events.AttrOneOf("k", "a", tooLong), events.ErrFilterTooLarge},
		{"topic not UTF-8", events.Topic("\xff"), events.ErrBadFilter},
		{"key not UTF-8", events.AttrPrefix("k\xc3", "v"), events.ErrBadFilter},
		{"one-of value not UTF-8", events.AttrOneOf("k", "\xed\xa0\x80"), events.ErrBadFilter},
		{"depth at limit", chain(events.Topic("t"), events.MaxFilterDepth-1), nil},
		{"too deep", chain(events.Topic("t"), events.MaxFilterDepth), events.ErrFilterTooLarge},
		{"nodes at limit", events.Or(leaves(events.MaxFilterNodes - 1)...), nil},
		{"too many nodes", events.Or(leaves(events.MaxFilterNodes)...), events.ErrFilterTooLarge},
		{"too many nodes, nested", events.And(events.Or(leaves(40)...), events.Or(leaves(40)...)), events.ErrFilterTooLarge},
		{"one-of encodes too large", events.AttrOneOf("k", values(events.MaxOneOf, long)...), events.ErrFilterTooLarge},
		{"spec encodes too large", events.Or(
			events.AttrOneOf("k", values(16, long)...),
			events.AttrOneOf("k", values(16, long)...),
		), events.ErrFilterTooLarge},
		{"invalid operand of And", events.And(events.All(), events.Topic("")), events.ErrBadFilter},
		{"invalid operand of Or", events.Or(events.Topic(tooLong)), events.ErrFilterTooLarge},
		{"invalid operand of Not", events.Not(events.AttrOneOf("k")), events.ErrBadFilter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := tt.f.MarshalCBOR(); err != nil {
					t.Fatalf("MarshalCBOR: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
			if _, err := tt.f.MarshalCBOR(); !errors.Is(err, tt.want) {
				t.Errorf("MarshalCBOR error = %v, want %v", err, tt.want)
			}
			ev := events.Event{Topic: "t", Attrs: []events.Attr{{"k", "v"}}}
			if tt.f.Match(&ev) || events.Not(tt.f).Match(&ev) {
				t.Error("an invalid filter (or its negation) matched")
			}
			if !strings.HasPrefix(tt.f.String(), "invalid(") {
				t.Errorf("String = %q", tt.f.String())
			}
		})
	}
}

func TestFilterString(t *testing.T) {
	f := events.And(
		events.TopicPrefix("orders."),
		events.Or(events.AttrEquals("region", "eu"), events.AttrOneOf("tier", "gold", "silver")),
		events.Not(events.AttrPrefix("note", "test")),
		events.Filter{},
		events.All(),
		events.Topic(`a"b`),
	)
	want := `And(TopicPrefix("orders."), Or(AttrEquals("region", "eu"), AttrOneOf("tier", "gold", "silver")), Not(AttrPrefix("note", "test")), Nothing(), All(), Topic("a\"b"))`
	if got := f.String(); got != want {
		t.Errorf("String =\n%s\nwant\n%s", got, want)
	}
}

func TestFilterEqualAndIsZero(t *testing.T) {
	a := events.And(events.Topic("a"), events.AttrEquals("k", "v"))
	if !a.Equal(events.And(events.Topic("a"), events.AttrEquals("k", "v"))) {
		t.Error("equal specs not Equal")
	}
	for _, g := range []events.Filter{
		events.And(events.AttrEquals("k", "v"), events.Topic("a")),
		events.Or(events.Topic("a"), events.AttrEquals("k", "v")),
		events.And(events.Topic("a"), events.AttrEquals("k", "w")),
		events.And(events.Topic("a"), events.AttrPrefix("k", "v")),
		events.And(events.Topic("a")),
	} {
		if a.Equal(g) {
			t.Errorf("%v Equal %v", a, g)
		}
	}
	if events.AttrOneOf("k", "a", "b").Equal(events.AttrOneOf("k", "a", "c")) {
		t.Error("one-ofs with different values Equal")
	}
	bad := events.Topic("")
	if bad.Equal(bad) {
		t.Error("an invalid filter Equal itself")
	}
	if !(events.Filter{}).IsZero() || !events.Nothing().IsZero() || !events.Nothing().Equal(events.Filter{}) {
		t.Error("the empty spec is not zero")
	}
	for _, f := range []events.Filter{events.All(), events.Not(events.Nothing()), events.Or(), bad} {
		if f.IsZero() {
			t.Errorf("%v IsZero", f)
		}
	}
}
