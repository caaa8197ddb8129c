package main

import (
	"fmt"
	"net/url"

	gradecastv1 "gradecast/gen/go/gradecast/v1"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
)

// scoreEventType is the event type gradecast writes into every envelope and
// into the `ce-type` header, read from the contract (the envelope's
// `(gradecast.v1.event_type)` option) rather than typed again here.
var scoreEventType = proto.GetExtension(
	(&gradecastv1.ExternalGraderScoreSubmitted{}).ProtoReflect().Descriptor().Options(),
	gradecastv1.E_EventType,
).(string)

// route is what the CloudEvents headers of a message say about it, read
// without decoding the payload: enough to pick a handler or skip the event.
type route struct {
	eventID   string // ce-id, the same as Nats-Msg-Id and the envelope's metadata.id
	eventType string // ce-type
	queueName string // ce-queuename: the exact grader queue, percent-decoded
}

// routeOf reads the headers of a delivered message. gradecast percent-encodes
// header values outside printable ASCII (a queue name may be `北大-计算机.101`).
func routeOf(msg *nats.Msg) (route, error) {
	r := route{eventID: msg.Header.Get("ce-id"), eventType: msg.Header.Get("ce-type")}
	queueName, err := url.PathUnescape(msg.Header.Get("ce-queuename"))
	if err != nil {
		return r, fmt.Errorf("ce-queuename: %w", err)
	}
	r.queueName = queueName
	return r, nil
}

// queueFilter is the set of grader queues this LMS applies; empty means every
// queue. It decides from the headers alone, so events of other queues are
// passed over without being decoded.
type queueFilter map[string]bool

func (f queueFilter) String() string { return fmt.Sprint(map[string]bool(f)) }

// Set adds one --queue flag.
func (f queueFilter) Set(queueName string) error {
	f[queueName] = true
	return nil
}

func (f queueFilter) takes(queueName string) bool { return len(f) == 0 || f[queueName] }
