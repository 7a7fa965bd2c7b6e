package events

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on a filter spec. They bound what a spec costs to hold, to encode
// and to evaluate against one event (at most MaxFilterNodes node visits and
// MaxFilterNodes*MaxOneOf string comparisons), so a spec from a peer cannot
// be expensive. Every constructor, Validate and DecodeFilter enforce them.
const (
	// MaxFilterNodes bounds the number of nodes (predicates and operators).
	MaxFilterNodes = 64
	// MaxFilterDepth bounds the nesting: a predicate alone has depth 1,
	// And(predicate) depth 2.
	MaxFilterDepth = 8
	// MaxFilterString bounds every topic, prefix, key and value, in bytes.
	MaxFilterString = 256
	// MaxOneOf bounds the values of one AttrOneOf.
	MaxOneOf = 32
	// MaxFilterSize bounds the CBOR encoding of a spec, in bytes.
	MaxFilterSize = 8192
)

// op is a node's operator; its value is the operator code on the wire
// (doc.go, "Wire format"), so the order is fixed.
type op uint8

const (
	opNone op = iota
	opAll
	opTopic
	opTopicPrefix
	opAttrEquals
	opAttrPrefix
	opAttrOneOf
	opAnd
	opOr
	opNot
	numOps
)

// node is one operator of a program. Nodes are stored in pre-order; a
// node's subtree ends just before nodes[end], so an operator walks its
// operands by jumping from one end to the next.
type node struct {
	op   op
	end  int32
	key  string   // attribute key
	val  string   // topic, prefix or value
	vals []string // AttrOneOf values
}

// program is a validated spec compiled to a flat array, or the error that
// made it invalid. Programs are immutable once built, so Filters share them
// freely between goroutines.
type program struct {
	nodes []node
	depth int
	size  int // bytes of the CBOR encoding
	err   error
}

// Filter is a filter spec: data, not code, so it can be encoded, sent to
// another node, decoded and checked there. It is built with the
// constructors below (or DecodeFilter) and is immutable; a Filter is safe
// to share and to use from many goroutines.
//
// The zero Filter is the empty spec: it matches nothing. All matches
// everything.
//
// Each constructor checks its arguments and the limits at once; a Filter
// built from a bad argument, or from an invalid operand, carries the error,
// which Validate (and Subscribe, Update and MarshalCBOR) return. An invalid
// Filter matches nothing.
type Filter struct{ p *program }

var (
	nothingProg = &program{nodes: []node{{op: opNone, end: 1}}, depth: 1, size: 2}
	allProg     = &program{nodes: []node{{op: opAll, end: 1}}, depth: 1, size: 2}
)

// prog returns the program, the zero Filter's included.
func (f Filter) prog() *program {
	if f.p == nil {
		return nothingProg
	}
	return f.p
}

// All returns the spec that matches every event.
func All() Filter { return Filter{allProg} }

// Nothing returns the spec that matches no event: the zero Filter.
func Nothing() Filter { return Filter{} }

// Topic matches events whose topic is exactly topic, which must not be
// empty (no event has an empty topic).
func Topic(topic string) Filter {
	if topic == "" {
		return invalid(fmt.Errorf("%w: Topic: empty topic", ErrBadFilter))
	}
	return leaf(opTopic, "", topic, nil)
}

// TopicPrefix matches events whose topic starts with prefix. The empty
// prefix matches every topic.
func TopicPrefix(prefix string) Filter { return leaf(opTopicPrefix, "", prefix, nil) }

// AttrEquals matches events that have attribute key with value value.
func AttrEquals(key, value string) Filter { return leaf(opAttrEquals, key, value, nil) }

// AttrPrefix matches events that have attribute key with a value starting
// with prefix. With the empty prefix it matches events that have the
// attribute at all.
func AttrPrefix(key, prefix string) Filter { return leaf(opAttrPrefix, key, prefix, nil) }

// AttrOneOf matches events that have attribute key with one of values; it
// needs between 1 and MaxOneOf values.
func AttrOneOf(key string, values ...string) Filter {
	if len(values) == 0 {
		return invalid(fmt.Errorf("%w: AttrOneOf(%s): no values", ErrBadFilter, quote(key)))
	}
	if len(values) > MaxOneOf {
		return invalid(fmt.Errorf("%w: AttrOneOf(%s): %d values, limit %d", ErrFilterTooLarge, quote(key), len(values), MaxOneOf))
	}
	return leaf(opAttrOneOf, key, "", append([]string(nil), values...))
}

// And matches events that every operand matches; And() matches everything.
func And(operands ...Filter) Filter { return compose(opAnd, operands) }

// Or matches events that some operand matches; Or() matches nothing.
func Or(operands ...Filter) Filter { return compose(opOr, operands) }

// Not matches events that f does not match. Not of an invalid Filter is
// invalid, not "everything".
func Not(f Filter) Filter { return compose(opNot, []Filter{f}) }

func invalid(err error) Filter { return Filter{&program{err: err}} }

func leaf(o op, key, val string, vals []string) Filter {
	size := cborHead(2) + 1 // array header, operator
	if o >= opAttrEquals {
		if key == "" {
			return invalid(fmt.Errorf("%w: %s: empty attribute key", ErrBadFilter, opNames[o]))
		}
		if err := checkString(o, "key", key); err != nil {
			return invalid(err)
		}
		size = cborHead(uint64(2+max(1, len(vals)))) + 1 + cborText(key)
	}
	if o == opAttrOneOf {
		for _, v := range vals {
			if err := checkString(o, "value", v); err != nil {
				return invalid(err)
			}
			size += cborText(v)
		}
	} else {
		if err := checkString(o, "value", val); err != nil {
			return invalid(err)
		}
		size += cborText(val)
	}
	if size > MaxFilterSize { // only a one-of of long values gets here
		return invalid(fmt.Errorf("%w: %s: encodes to %d bytes, limit %d", ErrFilterTooLarge, opNames[o], size, MaxFilterSize))
	}
	return Filter{&program{
		nodes: []node{{op: o, end: 1, key: key, val: val, vals: vals}},
		depth: 1,
		size:  size,
	}}
}

func checkString(o op, what, s string) error {
	if len(s) > MaxFilterString {
		return fmt.Errorf("%w: %s: %s of %d bytes, limit %d", ErrFilterTooLarge, opNames[o], what, len(s), MaxFilterString)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s: %s is not valid UTF-8", ErrBadFilter, opNames[o], what)
	}
	return nil
}

// compose builds an operator over operands, checking the limits before it
// copies anything.
func compose(o op, operands []Filter) Filter {
	n, depth := 1, 0
	size := cborHead(uint64(1+len(operands))) + 1
	for _, f := range operands {
		p := f.prog()
		if p.err != nil {
			return invalid(p.err)
		}
		n += len(p.nodes)
		depth = max(depth, p.depth)
		size += p.size
		if n > MaxFilterNodes {
			return invalid(fmt.Errorf("%w: %s: more than %d nodes", ErrFilterTooLarge, opNames[o], MaxFilterNodes))
		}
	}
	depth++
	if depth > MaxFilterDepth {
		return invalid(fmt.Errorf("%w: %s: depth %d, limit %d", ErrFilterTooLarge, opNames[o], depth, MaxFilterDepth))
	}
	if size > MaxFilterSize {
		return invalid(fmt.Errorf("%w: %s: encodes to %d bytes, limit %d", ErrFilterTooLarge, opNames[o], size, MaxFilterSize))
	}
	nodes := make([]node, 1, n)
	nodes[0] = node{op: o, end: int32(n)}
	for _, f := range operands {
		base := int32(len(nodes))
		for _, nd := range f.prog().nodes {
			nd.end += base
			nodes = append(nodes, nd)
		}
	}
	return Filter{&program{nodes: nodes, depth: depth, size: size}}
}

// Validate returns nil for a usable spec, or the error (wrapping
// ErrBadFilter or ErrFilterTooLarge) that made it invalid.
func (f Filter) Validate() error { return f.prog().err }

// IsZero reports whether f is the empty spec, the zero Filter (or
// Nothing()). Most transport proxies hold it and need not subscribe at all.
func (f Filter) IsZero() bool {
	p := f.prog()
	return p.err == nil && len(p.nodes) == 1 && p.nodes[0].op == opNone
}

// Match reports whether ev passes the filter. It does not allocate. An
// invalid Filter matches nothing.
func (f Filter) Match(ev *Event) bool {
	p := f.p
	if p == nil || p.err != nil {
		return false
	}
	return p.eval(0, ev)
}

// eval evaluates the subtree at nodes[i]; recursion is bounded by
// MaxFilterDepth.
func (p *program) eval(i int32, ev *Event) bool {
	n := &p.nodes[i]
	switch n.op {
	case opAll:
		return true
	case opTopic:
		return ev.Topic == n.val
	case opTopicPrefix:
		return strings.HasPrefix(ev.Topic, n.val)
	case opAttrEquals:
		v, ok := ev.Attr(n.key)
		return ok && v == n.val
	case opAttrPrefix:
		v, ok := ev.Attr(n.key)
		return ok && strings.HasPrefix(v, n.val)
	case opAttrOneOf:
		v, ok := ev.Attr(n.key)
		if !ok {
			return false
		}
		for _, s := range n.vals {
			if s == v {
				return true
			}
		}
		return false
	case opAnd:
		for j := i + 1; j < n.end; j = p.nodes[j].end {
			if !p.eval(j, ev) {
				return false
			}
		}
		return true
	case opOr:
		for j := i + 1; j < n.end; j = p.nodes[j].end {
			if p.eval(j, ev) {
				return true
			}
		}
		return false
	case opNot:
		return !p.eval(i+1, ev)
	}
	return false // opNone
}

// Equal reports whether f and g are the same spec (the same tree, so
// And(a, b) and And(b, a) differ). Invalid Filters equal nothing.
func (f Filter) Equal(g Filter) bool {
	p, q := f.prog(), g.prog()
	if p.err != nil || q.err != nil || len(p.nodes) != len(q.nodes) {
		return false
	}
	for i := range p.nodes {
		a, b := &p.nodes[i], &q.nodes[i]
		if a.op != b.op || a.end != b.end || a.key != b.key || a.val != b.val || len(a.vals) != len(b.vals) {
			return false
		}
		for k := range a.vals {
			if a.vals[k] != b.vals[k] {
				return false
			}
		}
	}
	return true
}

var opNames = [numOps]string{"Nothing", "All", "Topic", "TopicPrefix", "AttrEquals", "AttrPrefix", "AttrOneOf", "And", "Or", "Not"}

// String returns the spec in the Go syntax that builds it, for logs.
func (f Filter) String() string {
	p := f.prog()
	if p.err != nil {
		return "invalid(" + p.err.Error() + ")"
	}
	var b strings.Builder
	p.format(&b, 0)
	return b.String()
}

func (p *program) format(b *strings.Builder, i int32) {
	n := &p.nodes[i]
	b.WriteString(opNames[n.op])
	b.WriteByte('(')
	switch n.op {
	case opTopic, opTopicPrefix:
		b.WriteString(quote(n.val))
	case opAttrEquals, opAttrPrefix:
		b.WriteString(quote(n.key))
		b.WriteString(", ")
		b.WriteString(quote(n.val))
	case opAttrOneOf:
		b.WriteString(quote(n.key))
		for _, v := range n.vals {
			b.WriteString(", ")
			b.WriteString(quote(v))
		}
	case opAnd, opOr, opNot:
		for j := i + 1; j < n.end; j = p.nodes[j].end {
			if j > i+1 {
				b.WriteString(", ")
			}
			p.format(b, j)
		}
	}
	b.WriteByte(')')
}

func quote(s string) string { return strconv.Quote(s) }
