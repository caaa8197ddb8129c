package main

import (
	"errors"
	"fmt"
	"log"
	"time"

	gradecastv1 "gradecast/gen/go/gradecast/v1"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The longest wait --nak-delay doubles up to.
const maxNakDelay = time.Minute

// scoreConsumer turns each delivered message into exactly one answer to
// JetStream: ack (applied, or nothing to apply), nak with a delay (try again
// later), or term (never readable).
type scoreConsumer struct {
	book         *gradebook
	queues       queueFilter
	nakDelay     time.Duration
	failuresLeft int
}

func (c *scoreConsumer) handle(msg *nats.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		log.Printf("not a JetStream message on %s: %v", msg.Subject, err)
		return
	}
	r, err := routeOf(msg)
	if err == nil && r.eventType != scoreEventType {
		err = fmt.Errorf("ce-type %q is not %s", r.eventType, scoreEventType)
	}
	if err != nil {
		c.answer(msg, c.terminate(msg, r.eventID, err))
		return
	}
	// Routing needs the headers only: an event of another queue is acknowledged
	// without its payload ever being decoded.
	if !c.queues.takes(r.queueName) {
		fmt.Printf("skipped %s (queue %q is not routed here)\n", r.eventID, r.queueName)
		c.answer(msg, msg.AckSync())
		return
	}
	event, err := decode(msg.Data, r)
	if err != nil {
		c.answer(msg, c.terminate(msg, r.eventID, err))
		return
	}
	if err := c.apply(event); err != nil {
		delay := c.nakDelay << (meta.NumDelivered - 1)
		if delay > maxNakDelay || delay <= 0 {
			delay = maxNakDelay
		}
		fmt.Printf("nak %s (delivery %d): %v; redelivery in %s\n", r.eventID, meta.NumDelivered, err, delay)
		c.answer(msg, msg.NakWithDelay(delay))
		return
	}
	// Acknowledged only now that the score is applied: a crash before this line
	// means a redelivery, which apply recognises by its sequence.
	c.answer(msg, msg.AckSync())
}

// decode reads the payload as the event envelope and checks that it is the
// event its headers announced: a router trusted them without decoding.
func decode(data []byte, r route) (*gradecastv1.ExternalGraderScoreSubmitted, error) {
	event := &gradecastv1.ExternalGraderScoreSubmitted{}
	if err := proto.Unmarshal(data, event); err != nil {
		return nil, fmt.Errorf("payload is not an ExternalGraderScoreSubmitted: %v", err)
	}
	switch {
	case event.GetMetadata().GetId() != r.eventID:
		return nil, fmt.Errorf("ce-id %q differs from the payload's id %q", r.eventID, event.GetMetadata().GetId())
	case event.GetScoreData().GetQueueName() != r.queueName:
		return nil, fmt.Errorf("ce-queuename %q differs from the payload's queue %q", r.queueName, event.GetScoreData().GetQueueName())
	case event.GetSubmissionSequence() == 0:
		return nil, errors.New("submission_sequence is 0")
	}
	return event, nil
}

// apply writes the score to the gradebook unless it holds that submission at
// this sequence or a higher one, and prints what it did.
func (c *scoreConsumer) apply(event *gradecastv1.ExternalGraderScoreSubmitted) error {
	if c.failuresLeft > 0 {
		c.failuresLeft--
		return errors.New("simulated failure (--fail-first)")
	}
	score := event.GetScoreData()
	entry := gradeEntry{
		submissionKey:      submissionKey{QueueName: score.GetQueueName(), SubmissionID: score.GetSubmissionId()},
		SubmissionSequence: event.GetSubmissionSequence(),
		EventID:            event.GetMetadata().GetId(),
		PointsEarned:       score.GetPointsEarned(),
		PointsPossible:     score.GetPointsPossible(),
		UserID:             score.GetUserId(),
	}
	isApplied, heldSequence, err := c.book.apply(entry)
	if err != nil {
		return fmt.Errorf("save gradebook: %w", err)
	}
	if !isApplied {
		fmt.Printf("ignored %s (queue %q, submission %d: sequence %d, gradebook holds %d)\n",
			entry.EventID, entry.QueueName, entry.SubmissionID, entry.SubmissionSequence, heldSequence)
		return nil
	}
	line, err := protojson.Marshal(event)
	if err != nil {
		// Applied all the same: only the printout is lost.
		log.Printf("print event %s: %v", entry.EventID, err)
		line = []byte(entry.EventID)
	}
	fmt.Printf("applied %s\n", line)
	return nil
}

// terminate tells JetStream never to deliver msg again: no redelivery can make
// it readable. (gradecast's TypeScript and Python subscribers dead-letter such
// a message instead; this example only prints it.)
func (c *scoreConsumer) terminate(msg *nats.Msg, eventID string, err error) error {
	fmt.Printf("term %s: %v\n", eventID, err)
	return msg.Term()
}

// answer logs an ack, nak or term that did not reach the server: JetStream
// then redelivers the event after the ack wait, and apply recognises it.
func (c *scoreConsumer) answer(msg *nats.Msg, err error) {
	if err != nil {
		log.Printf("answer to %s (%s) was lost: %v", msg.Subject, msg.Header.Get("ce-id"), err)
	}
}
