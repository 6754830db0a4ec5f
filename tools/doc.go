// Package tools pins the versions of the code generators and checkers orgsync builds from the Go
// module proxy (buf, protoc-gen-go, protoc-gen-go-grpc, staticcheck, helm). It is deliberately outside go.work,
// so that the tools' own dependencies never change the versions the services build with.
// Run them through the Makefile, which builds them into .bin/.
package tools
