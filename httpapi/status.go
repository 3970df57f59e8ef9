package httpapi

import (
	"net/http"

	"github.com/mqim/mqim/protocol"
)

// Status is the HTTP status of an error code [IM-8.2-1]: one map for
// every endpoint that answers the core's refusals.
func Status(code string) int {
	switch code {
	case protocol.CodeBadPayload, protocol.CodeBadRequest, protocol.CodeUnknownType:
		return http.StatusBadRequest
	case protocol.CodeNotAuthorized, protocol.CodeForbidden, protocol.CodeBlocked, protocol.CodeNotMember,
		protocol.CodeMuted, protocol.CodeNotAllowed:
		return http.StatusForbidden
	case protocol.CodeUnknownUser, protocol.CodeUnknownGroup, protocol.CodeNotFound:
		return http.StatusNotFound
	case protocol.CodeCmidConflict:
		return http.StatusConflict
	case protocol.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case protocol.CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case protocol.CodeRateLimited:
		return http.StatusTooManyRequests
	case protocol.CodeContentRefused:
		return http.StatusUnprocessableEntity // [IM-18.1-3]
	case protocol.CodeUnavailable, protocol.CodeOverloaded:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
