// Package grpcerr builds gRPC status errors that carry google.rpc details a
// client can act on.
package grpcerr

import (
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FieldViolation names a request field at fault and why.
type FieldViolation struct {
	Field       string
	Description string
}

// InvalidArgument returns an InvalidArgument status naming the fields at fault
// in a BadRequest detail. The message repeats the first violation so a client
// that ignores details still learns what is wrong.
func InvalidArgument(violations ...FieldViolation) error {
	msg := "invalid request"
	if len(violations) > 0 {
		msg = fmt.Sprintf("invalid %s: %s", violations[0].Field, violations[0].Description)
	}
	st := status.New(codes.InvalidArgument, msg)
	br := &errdetails.BadRequest{}
	for _, v := range violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       v.Field,
			Description: v.Description,
		})
	}
	if withDetails, err := st.WithDetails(br); err == nil {
		st = withDetails
	}
	return st.Err()
}

// Field is shorthand for an InvalidArgument error with one violation.
func Field(field, format string, args ...any) error {
	return InvalidArgument(FieldViolation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// FailedPrecondition returns a FailedPrecondition status with a
// PreconditionFailure detail.
func FailedPrecondition(typ, subject, description string) error {
	st := status.New(codes.FailedPrecondition, description)
	pf := &errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
		Type: typ, Subject: subject, Description: description,
	}}}
	if withDetails, err := st.WithDetails(pf); err == nil {
		st = withDetails
	}
	return st.Err()
}
