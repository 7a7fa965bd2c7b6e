package genserver

import "sync"

// segSize is the number of messages per queue segment: small enough that a
// busy process pins little memory, large enough that a burst of casts costs
// one pool round trip per 32 messages.
const segSize = 32

// segment is a fixed block of queued messages. A mailbox is a chain of
// segments: the sender writes each message once, the process reads it once,
// and nothing is copied when the queue grows.
type segment struct {
	msgs [segSize]message
	off  int // first unread message (the process's side)
	n    int // messages written
	next *segment
}

// queue is a mailbox: a chain of segments, guarded by the process's mutex.
// An empty queue holds no segment, so an idle process holds no buffer.
type queue struct {
	head, tail *segment
	n          int
}

func (q *queue) push(pool *segPool, m message) {
	if q.tail == nil || q.tail.n == segSize {
		seg := pool.get()
		if q.tail == nil {
			q.head = seg
		} else {
			q.tail.next = seg
		}
		q.tail = seg
	}
	q.tail.msgs[q.tail.n] = m
	q.tail.n++
	q.n++
}

// take detaches the whole chain for the process to work through.
func (q *queue) take() *segment {
	h := q.head
	q.head, q.tail, q.n = nil, nil, 0
	return h
}

// prepend puts back the unread rest of a chain taken earlier, ahead of
// anything queued since.
func (q *queue) prepend(chain *segment) {
	last := chain
	for {
		q.n += last.n - last.off
		if last.next == nil {
			break
		}
		last = last.next
	}
	last.next = q.head
	q.head = chain
	if q.tail == nil {
		q.tail = last
	}
}

// segPool recycles segments within one System.
type segPool struct{ p sync.Pool }

func (sp *segPool) get() *segment {
	if s, ok := sp.p.Get().(*segment); ok {
		return s
	}
	return new(segment)
}

// release returns a drained segment to the pool and gives the next one.
func (sp *segPool) release(s *segment) *segment {
	next := s.next
	s.off, s.n, s.next = 0, 0, nil // the messages were cleared as they were read
	sp.p.Put(s)
	return next
}
