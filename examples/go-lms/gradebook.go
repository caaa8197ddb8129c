package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// submissionKey identifies a submission: its id is unique within its grader
// queue only, so the same id in two queues is two submissions.
type submissionKey struct {
	QueueName    string `json:"queue_name"`
	SubmissionID int64  `json:"submission_id,string"`
}

// gradeEntry is what the gradebook keeps of the newest score of a submission.
type gradeEntry struct {
	submissionKey
	SubmissionSequence uint32 `json:"submission_sequence"`
	EventID            string `json:"event_id"`
	PointsEarned       int32  `json:"points_earned"`
	PointsPossible     int32  `json:"points_possible"`
	UserID             string `json:"user_id"`
}

// gradebook stands in for the LMS's database: the latest applied score of each
// submission, and with it the highest submission_sequence applied, which is
// what makes applying idempotent. With a path it is saved to that JSON file
// before apply returns, so an event is acknowledged only once its score is on
// disk and a restart keeps the idempotency.
type gradebook struct {
	path    string
	entries map[submissionKey]gradeEntry
}

// openGradebook loads the gradebook at path (an empty one if the file does not
// exist yet); with an empty path it lives in memory only.
func openGradebook(path string) (*gradebook, error) {
	book := &gradebook{path: path, entries: map[submissionKey]gradeEntry{}}
	if path == "" {
		return book, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return book, nil
	}
	if err != nil {
		return nil, err
	}
	var saved []gradeEntry
	if err := json.Unmarshal(data, &saved); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, entry := range saved {
		book.entries[entry.submissionKey] = entry
	}
	return book, nil
}

// apply records entry unless the gradebook already holds its submission at the
// same or a higher sequence: a redelivery after a lost ack, a re-driven event,
// or an older regrade arriving after a newer one. It reports whether the score
// was applied, and the sequence held before.
func (b *gradebook) apply(entry gradeEntry) (isApplied bool, heldSequence uint32, err error) {
	held, isKnown := b.entries[entry.submissionKey]
	if isKnown && held.SubmissionSequence >= entry.SubmissionSequence {
		return false, held.SubmissionSequence, nil
	}
	b.entries[entry.submissionKey] = entry
	if err := b.save(); err != nil {
		// Not applied after all: the event will be redelivered and tried again.
		if isKnown {
			b.entries[entry.submissionKey] = held
		} else {
			delete(b.entries, entry.submissionKey)
		}
		return false, held.SubmissionSequence, err
	}
	return true, held.SubmissionSequence, nil
}

// save writes the whole gradebook to a temp file and renames it over the old
// one, so a crash leaves either the old or the new file, never half of one.
func (b *gradebook) save() error {
	if b.path == "" {
		return nil
	}
	entries := make([]gradeEntry, 0, len(b.entries))
	for _, entry := range b.entries {
		entries = append(entries, entry)
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].QueueName != entries[j].QueueName {
			return entries[i].QueueName < entries[j].QueueName
		}
		return entries[i].SubmissionID < entries[j].SubmissionID
	})
	data, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	temp, err := os.CreateTemp(filepath.Dir(b.path), ".gradebook-*")
	if err != nil {
		return err
	}
	defer os.Remove(temp.Name()) // fails harmlessly once renamed
	if _, err := temp.Write(data); err != nil {
		temp.Close()
		return err
	}
	if err := temp.Sync(); err != nil {
		temp.Close()
		return err
	}
	if err := temp.Close(); err != nil {
		return err
	}
	return os.Rename(temp.Name(), b.path)
}
