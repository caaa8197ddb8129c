// Command go-lms is an LMS-side consumer of gradecast's score events in Go: a
// durable JetStream pull consumer that decodes each event with the generated
// stubs (gen/go), applies its score to a gradebook idempotently, and only then
// acknowledges it.
//
//	.data/go-bin/go-lms --nats nats://127.0.0.1:4222 --gradebook .data/go-lms/gradebook.json
//
// Each delivery prints one line on stdout:
//
//	applied {...}        the event as proto3 JSON; its score is now in the gradebook
//	ignored <event id>   the gradebook already holds that submission at this sequence or a higher one
//	skipped <event id>   the ce-queuename header names a queue this LMS does not take (--queue)
//	nak <event id>       applying failed; JetStream redelivers it after the printed delay
//	term <event id>      not a readable score event; JetStream will not deliver it again
//
// Build it with scripts/go-build.sh.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

// lmsFlags holds the command line, parsed once in main.
type lmsFlags struct {
	natsURL       string
	stream        string
	subjectPrefix string
	durable       string
	queues        queueFilter
	gradebookPath string
	batch         int
	ackWait       time.Duration
	maxDeliver    int
	nakDelay      time.Duration
	failFirst     int
}

func parseFlags() lmsFlags {
	f := lmsFlags{queues: queueFilter{}}
	natsURL := os.Getenv("GRADECAST_NATS_URL")
	if natsURL == "" {
		natsURL = nats.DefaultURL
	}
	flag.StringVar(&f.natsURL, "nats", natsURL, "NATS server URL (default: $GRADECAST_NATS_URL when set)")
	flag.StringVar(&f.stream, "stream", "GRADECAST_SCORES", "JetStream stream gradecast publishes to (its --stream)")
	flag.StringVar(&f.subjectPrefix, "subject-prefix", "gradecast", "subject prefix gradecast publishes under")
	flag.StringVar(&f.durable, "durable", "go-lms", "durable consumer name: a restart resumes where the last run stopped")
	flag.Var(f.queues, "queue", "apply only this grader queue, chosen by the ce-queuename header (repeatable; default: every queue)")
	flag.StringVar(&f.gradebookPath, "gradebook", "", "JSON file the gradebook is saved to before each ack (default: memory only)")
	flag.IntVar(&f.batch, "batch", 10, "events fetched per pull request")
	flag.DurationVar(&f.ackWait, "ack-wait", 30*time.Second, "how long JetStream waits for an ack before redelivering")
	flag.IntVar(&f.maxDeliver, "max-deliver", 5, "deliveries of one event before JetStream stops trying")
	flag.DurationVar(&f.nakDelay, "nak-delay", time.Second, "redelivery delay after the first failed apply; doubles per delivery, at most 1m")
	flag.IntVar(&f.failFirst, "fail-first", 0, "make the first N applies fail, to watch a nak and its redelivery")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "go-lms: applies gradecast's score events from a durable JetStream consumer.\n\nUsage: go-lms [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	return f
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("go-lms: ")
	f := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, f); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, f lmsFlags) error {
	book, err := openGradebook(f.gradebookPath)
	if err != nil {
		return fmt.Errorf("gradebook: %w", err)
	}
	nc, err := nats.Connect(f.natsURL, nats.Name("go-lms"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", f.natsURL, err)
	}
	// Drain hands back nothing we hold: handle() has answered every fetched event.
	defer nc.Drain()
	js, err := nc.JetStream()
	if err != nil {
		return err
	}
	filter := f.subjectPrefix + ".scores.v1.*"
	if err := ensureConsumer(js, f, filter); err != nil {
		return err
	}
	// Bound, not created by the subscription: nats.go deletes a consumer it
	// created when the subscription ends, and this one must outlive the process.
	sub, err := js.PullSubscribe(filter, f.durable, nats.Bind(f.stream, f.durable))
	if err != nil {
		return fmt.Errorf("subscribe to %s through %s: %w", f.stream, f.durable, err)
	}
	log.Printf("consuming %s through durable %s (filter %s, queues %s)", f.stream, f.durable, filter, describeQueues(f.queues))

	consumer := &scoreConsumer{book: book, queues: f.queues, nakDelay: f.nakDelay, failuresLeft: f.failFirst}
	for ctx.Err() == nil {
		// The fetch waits up to the JetStream context's default (5 s) for events;
		// a stop signal ends the wait at once.
		msgs, err := sub.Fetch(f.batch, nats.Context(ctx))
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, context.Canceled):
			continue
		case err != nil:
			log.Printf("fetch: %v", err)
			continue
		}
		// One event at a time, in stream order; a stop waits for the batch in hand.
		for _, msg := range msgs {
			consumer.handle(msg)
		}
	}
	log.Printf("stopping")
	return nil
}

// ensureConsumer creates the durable pull consumer unless it exists. An
// existing one keeps its settings and its position in the stream.
func ensureConsumer(js nats.JetStreamContext, f lmsFlags, filter string) error {
	_, err := js.ConsumerInfo(f.stream, f.durable)
	if err == nil {
		return nil
	}
	if !errors.Is(err, nats.ErrConsumerNotFound) {
		return fmt.Errorf("consumer %s on %s: %w", f.durable, f.stream, err)
	}
	_, err = js.AddConsumer(f.stream, &nats.ConsumerConfig{
		Durable:       f.durable,
		FilterSubject: filter,
		DeliverPolicy: nats.DeliverAllPolicy,
		AckPolicy:     nats.AckExplicitPolicy,
		AckWait:       f.ackWait,
		MaxDeliver:    f.maxDeliver,
		// Events are applied one by one; holding many unacked ones gains nothing.
		MaxAckPending: f.batch,
	})
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", f.durable, f.stream, err)
	}
	return nil
}

func describeQueues(queues queueFilter) string {
	if len(queues) == 0 {
		return "all"
	}
	return queues.String()
}
