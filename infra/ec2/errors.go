package ec2

import (
	"errors"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// errorCode is the AWS error code inside err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// answered reports whether AWS refused the request (a 4xx answer), so it created nothing.
// Transport errors, cancellations and 5xx answers leave the outcome unknown.
func answered(err error) bool {
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) || re.Response == nil || re.Response.Response == nil {
		return false
	}
	return re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500
}
