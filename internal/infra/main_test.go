package infra_test

import (
	"os"
	"testing"

	"github.com/pdkit/pipedrive-lambda-kit/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
