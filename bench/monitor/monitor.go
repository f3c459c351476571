// What the original project's monitor.go did, as the baseline for bench/monitor.ts: connect with
// pgx, read the newest quote of one pair, print one line, exit. Built by the benchmark from
// Debian's golang-go and golang-github-jackc-pgx-v4-dev, offline (GOPATH mode).
//
// Usage: monitor 'host=/socket/dir user=cotacao dbname=cotacao' USD-BRL
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v4"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "Cannot read the newest quote: expected a DSN and a pair, run: monitor 'host=/socket/dir dbname=cotacao' USD-BRL")
		os.Exit(3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "Cannot connect to PostgreSQL:", err)
		os.Exit(3)
	}
	defer conn.Close(ctx)
	var bid, ask float64
	var ts time.Time
	err = conn.QueryRow(ctx, "select bid, ask, ts from quotes where pair=$1 order by ts desc limit 1", os.Args[2]).Scan(&bid, &ask, &ts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Cannot read the newest quote:", err)
		os.Exit(3)
	}
	fmt.Printf("%s bid %.4f ask %.4f at %s\n", os.Args[2], bid, ask, ts.UTC().Format(time.RFC3339))
}
