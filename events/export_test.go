package events

import "fmt"

// MixedFilters returns n specs of the mix the benchmarks use: a fifth each
// of exact topics, topic prefixes, attribute predicates alone, And
// combinations and Or combinations, over the topics and attributes of
// MixedEvents.
func MixedFilters(n int) []Filter {
	out := make([]Filter, n)
	for i := range out {
		svc := fmt.Sprintf("svc%d.", i%10)
		topic := fmt.Sprintf("svc%d.evt%d", i%10, i%5)
		region := fmt.Sprintf("r%d", i%8)
		switch i % 5 {
		case 0:
			out[i] = Topic(topic)
		case 1:
			out[i] = TopicPrefix(svc)
		case 2:
			if i%2 == 0 {
				out[i] = AttrEquals("region", region)
			} else {
				out[i] = AttrOneOf("tier", "gold", fmt.Sprintf("t%d", i%7))
			}
		case 3:
			out[i] = And(TopicPrefix(svc), AttrEquals("region", region), Not(AttrEquals("tier", "bronze")))
		case 4:
			out[i] = Or(Topic(topic), And(TopicPrefix(svc), AttrPrefix("region", "r1")), Topic(fmt.Sprintf("svc%d.evt%d", (i+1)%10, i%5)))
		}
	}
	return out
}

// MixedEvents returns n events over the topics and attributes of
// MixedFilters.
func MixedEvents(n int) []Event {
	tiers := []string{"gold", "silver", "bronze"}
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{
			Topic: fmt.Sprintf("svc%d.evt%d", i%10, (i/10)%5),
			Attrs: []Attr{{"region", fmt.Sprintf("r%d", i%8)}, {"tier", tiers[i%3]}, {"id", fmt.Sprint(i)}},
		}
	}
	return out
}
