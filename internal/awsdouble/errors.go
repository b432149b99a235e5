package awsdouble

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
)

// apiError is an AWS error answer.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// ErrorCode, ErrorMessage and ErrorFault make seeding errors (PushImage) read like SDK errors.
func (e *apiError) ErrorCode() string    { return e.Code }
func (e *apiError) ErrorMessage() string { return e.Message }
func (e *apiError) ErrorFault() smithy.ErrorFault {
	if e.Status >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

func errorf(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeEC2Error writes EC2's query-protocol error document.
func writeEC2Error(w http.ResponseWriter, requestID string, e *apiError) {
	type xErr struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	doc := struct {
		XMLName   xml.Name `xml:"Response"`
		Errors    []xErr   `xml:"Errors>Error"`
		RequestID string   `xml:"RequestID"`
	}{Errors: []xErr{{e.Code, e.Message}}, RequestID: requestID}
	body, _ := xml.Marshal(doc)
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}

// writeJSONError writes the JSON 1.1 error document ECR and SSM use.
func writeJSONError(w http.ResponseWriter, requestID string, e *apiError) {
	body, _ := json.Marshal(map[string]string{"__type": e.Code, "message": e.Message})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
