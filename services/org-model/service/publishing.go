package service

import "errors"

// errPublishing is the answer to an approval while DIRECTORY refuses desired state: it would
// wait behind the changes already waiting to be published, so it is refused at once (gRPC
// Unavailable), with nothing decided.
var errPublishing = errors.New("org-model cannot publish desired state now (stream DIRECTORY refuses it); nothing was decided — try again once it accepts")
