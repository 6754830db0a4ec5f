package stream

import (
	"github.com/orgsync/orgsync/pkg/subject"
	orgsyncv1 "github.com/orgsync/orgsync/proto/orgsync/v1"
)

// Token is subject.Token.
//
// Deprecated: use subject.Token; kept only until hr-ingest (restructured on its own branch)
// imports pkg/subject, then removed.
func Token(s string) string { return subject.Token(s) }

// HRWorkerSubject is subject.HRWorkerSubject.
//
// Deprecated: use subject.HRWorkerSubject; kept only until hr-ingest imports pkg/subject.
func HRWorkerSubject(source, workerID string) string {
	return subject.HRWorkerSubject(source, workerID)
}

// HRSubject is subject.HRSubject.
//
// Deprecated: use subject.HRSubject; kept only until hr-ingest imports pkg/subject.
func HRSubject(event *orgsyncv1.HREvent) (string, error) { return subject.HRSubject(event) }
