// Command sarama-check runs compatibility checks for Shopify/sarama (pure Go client, the version
// Debian ships as golang-github-shopify-sarama-dev: 1.22) against a Kafka broker.
//
// What it checks, in this order, each on its own (one failing or timing out does not stop the
// others), printing one JSON line per check on stdout:
//
//	metadata        brokers and topics (Client.Brokers, Client.Topics)
//	produce         100 keyed records (SyncProducer, acks=all) into a new 3-partition topic
//	                <prefix>-plain (ClusterAdmin.CreateTopic), read back with ConsumePartition
//	                from the oldest offset up to the high watermark (no group); counts must match
//	idempotent      the same with Producer.Idempotent (MaxOpenRequests 1, RequiredAcks WaitForAll),
//	                into <prefix>-idempotent
//	invalid_record  the value bytes 0a ff ff alone into the schema-bound topic (customer_events):
//	                ok when the produce fails with Kafka error 87 (INVALID_RECORD; sarama 1.22 has
//	                no name for that code and prints it as "Unknown error ... 87")
//	group           three ConsumerGroup members join one group on <prefix>-group (3 partitions);
//	                once each holds a partition, 60 keyed records are produced; the members read
//	                them together and mark them (committed every 200 ms and on leaving); ok when
//	                all 60 distinct keys were seen and the committed offsets
//	                (ClusterAdmin.ListConsumerGroupOffsets) equal the end offsets
//	transactions    sarama 1.22 has no transactional producer: reported as not applicable
//
// Each line: {"client", "version", "check", "ok", "detail", "secs"} (+ "na": true).
//
// Build (GOPATH mode against Debian's Go sources, no module proxy; .ci/clients.sh does this):
//
//	cd tests/clients/sarama && GO111MODULE=off GOPATH=$PWD/gopath:/usr/share/gocode \
//	  go build -o ../../../target/clients/sarama-check -ldflags "-X main.saramaVersion=1.22.1-1" .
//
// Run:  CHINOOK_BROKERS=127.0.0.1:9092 CLIENT_PREFIX=sa1 target/clients/sarama-check [check...]
// Env:  CHINOOK_BROKERS (bootstrap, default localhost:9092), CLIENT_PREFIX (prefix of the topics and
//
//	groups created here; a fresh one per run), CLIENT_SCHEMA_TOPIC (default customer_events),
//	CLIENT_CHECK_TIMEOUT (seconds per check, default 60), SARAMA_KAFKA_VERSION (the protocol
//	version sarama assumes, default 2.0.0), SARAMA_LOG=1 (sarama's log on stderr).
//
// Exit code 0 when every check ran (whatever its result), 2 on a usage error.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

// Set at build time from the Debian package version (-ldflags "-X main.saramaVersion=...").
var saramaVersion = "1.22 (version not stamped at build)"

var (
	brokers      = strings.Split(envOr("CHINOOK_BROKERS", "localhost:9092"), ",")
	prefix       = envOr("CLIENT_PREFIX", fmt.Sprintf("sarama-%d-%d", os.Getpid(), time.Now().Unix()))
	schemaTopic  = envOr("CLIENT_SCHEMA_TOPIC", "customer_events")
	checkTimeout = time.Duration(envFloat("CLIENT_CHECK_TIMEOUT", 60) * float64(time.Second))
)

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func envFloat(name string, fallback float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return fallback
}

// failed is a check that ran and saw something wrong; notApplicable is one this client cannot do.
type failed struct{ msg string }
type notApplicable struct{ msg string }

func (f failed) Error() string        { return f.msg }
func (n notApplicable) Error() string { return n.msg }

func fail(format string, args ...interface{}) error { return failed{fmt.Sprintf(format, args...)} }

// sarama 1.22 knows Kafka error codes up to 76; name the newer ones this matrix meets.
var newerCodes = map[sarama.KError]string{79: "MEMBER_ID_REQUIRED", 87: "INVALID_RECORD"}

// explain is err's text, plus the code's name when sarama has none for it.
func explain(err error) string {
	if k, ok := err.(sarama.KError); ok {
		if name, known := newerCodes[k]; known {
			return fmt.Sprintf("%v [%s]", err, name)
		}
	}
	return fmt.Sprint(err)
}

type line struct {
	Client  string  `json:"client"`
	Version string  `json:"version"`
	Check   string  `json:"check"`
	OK      bool    `json:"ok"`
	Detail  string  `json:"detail"`
	NA      bool    `json:"na,omitempty"`
	Secs    float64 `json:"secs"`
}

func short(text string) string {
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > 500 {
		return text[:497] + "..."
	}
	return text
}

// versionText: "1.22.1 (Debian)" from the stamped Debian package version
// (1.22.1-1); the Go toolchain is left out so the matrix reads the same on
// every machine.
func versionText() string {
	upstream := saramaVersion
	if i := strings.LastIndex(upstream, "-"); i > 0 && !strings.Contains(upstream, " ") {
		return fmt.Sprintf("%s (Debian)", upstream[:i])
	}
	return saramaVersion
}

func emit(check string, ok bool, detail string, secs float64, na bool) {
	out, _ := json.Marshal(line{"sarama", versionText(),
		check, ok, short(detail), na, float64(int(secs*100)) / 100})
	fmt.Println(string(out))
}

// runCheck runs fn in a goroutine with a context that ends at the check's deadline, and never
// waits more than the timeout plus 5 s for it.
func runCheck(name string, fn func(ctx context.Context) (string, error)) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	type result struct {
		detail string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- result{"", fmt.Errorf("panic: %v", r)}
			}
		}()
		d, err := fn(ctx)
		done <- result{d, err}
	}()
	select {
	case r := <-done:
		secs := time.Since(start).Seconds()
		switch e := r.err.(type) {
		case nil:
			emit(name, true, r.detail, secs, false)
		case notApplicable:
			emit(name, false, e.msg, secs, true)
		default:
			emit(name, false, e.Error(), secs, false)
		}
	case <-time.After(checkTimeout + 5*time.Second):
		emit(name, false, fmt.Sprintf("timed out after %v (a client call never returned)", checkTimeout), time.Since(start).Seconds(), false)
	}
}

func newConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	version, err := sarama.ParseKafkaVersion(envOr("SARAMA_KAFKA_VERSION", "2.0.0"))
	if err != nil {
		log.Fatalf("SARAMA_KAFKA_VERSION: %v", err)
	}
	cfg.Version = version
	cfg.ClientID = prefix + "-compat"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 15 * time.Second
	cfg.Net.WriteTimeout = 15 * time.Second
	cfg.Metadata.Retry.Max = 3
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond
	cfg.Admin.Timeout = 15 * time.Second
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 3
	cfg.Producer.Retry.Backoff = 200 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	return cfg
}

// poll calls cond every 100 ms until it is true or ctx ends; it returns cond's last answer.
func poll(ctx context.Context, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// createTopic creates the topic (an existing one is fine) and waits until the metadata shows
// every partition.
func createTopic(ctx context.Context, topic string, partitions int32) error {
	admin, err := sarama.NewClusterAdmin(brokers, newConfig())
	if err != nil {
		return fail("admin client: %v", err)
	}
	defer admin.Close()
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
	if te, ok := err.(*sarama.TopicError); ok && te.Err == sarama.ErrTopicAlreadyExists {
		err = nil
	}
	if err != nil {
		return fail("create topic %s: %v", topic, err)
	}
	client, err := sarama.NewClient(brokers, newConfig())
	if err != nil {
		return fail("client: %v", err)
	}
	defer client.Close()
	if !poll(ctx, func() bool {
		_ = client.RefreshMetadata(topic)
		ps, err := client.Partitions(topic)
		return err == nil && len(ps) == int(partitions)
	}) {
		return fail("topic %s never showed %d partitions in metadata", topic, partitions)
	}
	return nil
}

func keyed(topic, keyPrefix string, count int) []*sarama.ProducerMessage {
	msgs := make([]*sarama.ProducerMessage, count)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("%s%d", keyPrefix, i)),
			Value: sarama.StringEncoder(fmt.Sprintf("value-%d", i))}
	}
	return msgs
}

func produceKeyed(topic, keyPrefix string, count int, tweak func(*sarama.Config)) error {
	cfg := newConfig()
	if tweak != nil {
		tweak(cfg)
	}
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return fail("producer: %v", err)
	}
	defer producer.Close()
	if err := producer.SendMessages(keyed(topic, keyPrefix, count)); err != nil {
		if errs, ok := err.(sarama.ProducerErrors); ok && len(errs) > 0 {
			return fail("%d of %d not acknowledged, first error: %s", len(errs), count, explain(errs[0].Err))
		}
		return fail("send: %v", err)
	}
	return nil
}

// readAll reads every partition from the oldest offset up to its high watermark, without a group.
func readAll(ctx context.Context, topic string, partitions int32) ([]string, error) {
	client, err := sarama.NewClient(brokers, newConfig())
	if err != nil {
		return nil, fail("client: %v", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, fail("consumer: %v", err)
	}
	defer consumer.Close()
	var keys []string
	for p := int32(0); p < partitions; p++ {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return keys, fail("end offset of partition %d: %v", p, err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return keys, fail("consume partition %d: %v", p, err)
		}
		next := int64(0)
		for next < end {
			select {
			case m := <-pc.Messages():
				keys = append(keys, string(m.Key))
				next = m.Offset + 1
			case e := <-pc.Errors():
				pc.Close()
				return keys, fail("partition %d: %v", p, e.Err)
			case <-ctx.Done():
				pc.Close()
				return keys, fail("read %d records; partition %d stopped at %d of %d when the time ran out", len(keys), p, next, end)
			}
		}
		pc.Close()
	}
	return keys, nil
}

func distinct(keys []string) int {
	set := map[string]bool{}
	for _, k := range keys {
		set[k] = true
	}
	return len(set)
}

func produceAndReadBack(ctx context.Context, topic string, tweak func(*sarama.Config)) (string, error) {
	if err := createTopic(ctx, topic, 3); err != nil {
		return "", err
	}
	if err := produceKeyed(topic, "k", 100, tweak); err != nil {
		return "", err
	}
	keys, err := readAll(ctx, topic, 3)
	if err != nil {
		return "", err
	}
	if len(keys) != 100 || distinct(keys) != 100 {
		return "", fail("produced 100, read back %d records (%d distinct keys)", len(keys), distinct(keys))
	}
	return fmt.Sprintf("100 acknowledged, 100 read back from 3 partitions (%d distinct keys)", distinct(keys)), nil
}

// --- the checks ------------------------------------------------------------------------

func checkMetadata(ctx context.Context) (string, error) {
	client, err := sarama.NewClient(brokers, newConfig())
	if err != nil {
		return "", fail("client: %v", err)
	}
	defer client.Close()
	topics, err := client.Topics()
	if err != nil {
		return "", fail("topics: %v", err)
	}
	var listed []string
	for _, b := range client.Brokers() {
		listed = append(listed, fmt.Sprintf("%d@%s", b.ID(), b.Addr()))
	}
	if len(listed) == 0 {
		return "", fail("metadata lists no broker")
	}
	return fmt.Sprintf("brokers [%s], %d topics", strings.Join(listed, ", "), len(topics)), nil
}

func checkProduce(ctx context.Context) (string, error) {
	return produceAndReadBack(ctx, prefix+"-plain", nil)
}

func checkIdempotent(ctx context.Context) (string, error) {
	// Config.Producer.Idempotent appeared in sarama 1.20; look for it rather than assume.
	if !reflect.ValueOf(sarama.NewConfig().Producer).FieldByName("Idempotent").IsValid() {
		return "", notApplicable{"not supported by this client version (no Producer.Idempotent)"}
	}
	return produceAndReadBack(ctx, prefix+"-idempotent", func(cfg *sarama.Config) {
		cfg.Producer.Idempotent = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Net.MaxOpenRequests = 1
		if !cfg.Version.IsAtLeast(sarama.V0_11_0_0) {
			cfg.Version = sarama.V0_11_0_0
		}
	})
}

func checkInvalidRecord(ctx context.Context) (string, error) {
	cfg := newConfig()
	cfg.Producer.Retry.Max = 0
	producer, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return "", fail("producer: %v", err)
	}
	defer producer.Close()
	partition, offset, err := producer.SendMessage(&sarama.ProducerMessage{Topic: schemaTopic, Value: sarama.ByteEncoder([]byte{0x0a, 0xff, 0xff})})
	switch {
	case err == nil:
		return "", fail("the malformed value was accepted by %s at partition %d offset %d", schemaTopic, partition, offset)
	case err == sarama.KError(87):
		return fmt.Sprintf("rejected: Kafka error 87 (INVALID_RECORD), sarama says %q", err.Error()), nil
	default:
		return "", fail("rejected with %s, expected Kafka error 87 (INVALID_RECORD)", explain(err))
	}
}

// groupMember counts what one ConsumerGroup member sees; it marks every message it reads.
type groupMember struct {
	topic    string
	mu       *sync.Mutex
	seen     map[string]bool
	count    int
	assigned int
}

func (g *groupMember) Setup(s sarama.ConsumerGroupSession) error {
	g.mu.Lock()
	g.assigned = len(s.Claims()[g.topic])
	g.mu.Unlock()
	return nil
}

func (g *groupMember) Cleanup(sarama.ConsumerGroupSession) error {
	g.mu.Lock()
	g.assigned = 0
	g.mu.Unlock()
	return nil
}

func (g *groupMember) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		g.mu.Lock()
		g.count++
		g.seen[string(m.Key)] = true
		g.mu.Unlock()
		s.MarkMessage(m, "") // committed by the offset manager every CommitInterval and on leaving
	}
	return nil
}

// Three members join first; once each holds a partition the 60 records are produced.
// (Producing first lets the first member to join read everything before the others arrive,
// which would not show that the group shares the work.)
func checkGroup(ctx context.Context) (string, error) {
	topic, groupID := prefix+"-group", prefix+"-group"
	if err := createTopic(ctx, topic, 3); err != nil {
		return "", err
	}
	cfg := newConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.CommitInterval = 200 * time.Millisecond
	cfg.Consumer.Group.Session.Timeout = 10 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 1 * time.Second

	var mu sync.Mutex
	seen := map[string]bool{}
	var errs []string
	failures := make([]int, 3) // consecutive Consume errors per member
	members := make([]*groupMember, 3)
	groups := make([]sarama.ConsumerGroup, 3)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for i := range members {
		members[i] = &groupMember{topic: topic, mu: &mu, seen: seen}
		group, err := sarama.NewConsumerGroup(brokers, groupID, cfg)
		if err != nil {
			return "", fail("member %d: %v", i, err)
		}
		groups[i] = group
		wg.Add(1)
		go func(i int, group sarama.ConsumerGroup) {
			defer wg.Done()
			go func() {
				for e := range group.Errors() {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("member %d: %v", i, e))
					mu.Unlock()
				}
			}()
			// The usual sarama loop: Consume returns at every rebalance (or on an error).
			for runCtx.Err() == nil {
				err := group.Consume(runCtx, []string{topic}, members[i])
				mu.Lock()
				if err != nil {
					failures[i]++
					errs = append(errs, fmt.Sprintf("member %d: Consume: %s", i, explain(err)))
				} else {
					failures[i] = 0
				}
				mu.Unlock()
				if err != nil {
					select { // back off before joining again
					case <-runCtx.Done():
					case <-time.After(500 * time.Millisecond):
					}
				}
			}
		}(i, group)
	}
	closeAll := func() {
		stop()
		for _, g := range groups {
			g.Close()
		}
		wg.Wait()
	}
	allFailing := func() bool { // every member keeps failing to join: no point waiting
		for _, f := range failures {
			if f < 3 {
				return false
			}
		}
		return true
	}
	snapshot := func() (assigned []int, counts []string) {
		for _, m := range members {
			assigned = append(assigned, m.assigned)
			counts = append(counts, strconv.Itoa(m.count))
		}
		return
	}
	firstErrors := func() string {
		if len(errs) > 2 {
			return strings.Join(errs[:2], "; ") + fmt.Sprintf(" (+%d more)", len(errs)-2)
		}
		return strings.Join(errs, "; ")
	}

	// Wait (polling, bounded) until every member holds a partition, then produce.
	settleCtx, settleCancel := context.WithTimeout(ctx, checkTimeout/2)
	poll(settleCtx, func() bool {
		mu.Lock()
		defer mu.Unlock()
		a, _ := snapshot()
		return (a[0] > 0 && a[1] > 0 && a[2] > 0) || allFailing()
	})
	settleCancel()
	mu.Lock()
	a, _ := snapshot()
	mu.Unlock()
	settled := "3 members held a partition each"
	if !(a[0] > 0 && a[1] > 0 && a[2] > 0) {
		settled = fmt.Sprintf("partitions per member never reached 1/1/1 (last %v)", a)
	}
	if err := produceKeyed(topic, "g", 60, nil); err != nil {
		closeAll()
		return "", err
	}
	poll(ctx, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 60 || allFailing()
	})
	closeAll() // leaving the group commits the marked offsets one last time
	_, counts := snapshot()
	split := strings.Join(counts, "/")
	if len(seen) < 60 {
		return "", fail("%s; the group saw %d/60 distinct keys (per member %s); errors: %s", settled, len(seen), split, firstErrors())
	}

	// Committed offsets, asked with the client's own admin API, must reach the end of each partition.
	admin, err := sarama.NewClusterAdmin(brokers, newConfig())
	if err != nil {
		return "", fail("admin client: %v", err)
	}
	defer admin.Close()
	client, err := sarama.NewClient(brokers, newConfig())
	if err != nil {
		return "", fail("client: %v", err)
	}
	defer client.Close()
	var ends, committed []int64
	for p := int32(0); p < 3; p++ {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return "", fail("end offset of partition %d: %v", p, err)
		}
		ends = append(ends, end)
	}
	var fetchErr error
	// Leaving the group committed the marked offsets: allow 10 s for them to show, not more.
	commitCtx, commitCancel := context.WithTimeout(ctx, 10*time.Second)
	defer commitCancel()
	reached := poll(commitCtx, func() bool {
		committed = committed[:0]
		resp, err := admin.ListConsumerGroupOffsets(groupID, map[string][]int32{topic: {0, 1, 2}})
		if err != nil {
			fetchErr = err
			return false
		}
		for p := int32(0); p < 3; p++ {
			if b := resp.GetBlock(topic, p); b != nil {
				committed = append(committed, b.Offset)
			} else {
				committed = append(committed, -1)
			}
		}
		return reflect.DeepEqual(committed, ends)
	})
	if !reached {
		// sarama 1.22 drops commit errors silently: say how it commits, so the reader knows where to look.
		how := "OffsetCommit v1, per-partition commit timestamp -1"
		if cfg.Consumer.Offsets.Retention != 0 {
			how = "OffsetCommit v2 with a retention time"
		}
		fetchNote := ""
		if fetchErr != nil {
			fetchNote = fmt.Sprintf("; last OffsetFetch error: %v", fetchErr)
		}
		return "", fail("%s; 60/60 seen (per member %s) but committed offsets %v != end offsets %v (sarama 1.22 commits with %s and does not report commit errors)%s",
			settled, split, committed, ends, how, fetchNote)
	}
	note := ""
	if len(errs) > 0 {
		note = "; errors seen: " + firstErrors()
	}
	return fmt.Sprintf("%s; 60/60 distinct keys seen (records per member %s); committed offsets %v = end%s", settled, split, committed, note), nil
}

func checkTransactions(ctx context.Context) (string, error) {
	// The transactional producer (Config.Producer.Transaction) arrived long after 1.22.
	if !reflect.ValueOf(sarama.NewConfig().Producer).FieldByName("Transaction").IsValid() {
		return "", notApplicable{"not supported by this client version (sarama " + versionText() + " has no transactional producer: no Producer.Transaction config)"}
	}
	return "", notApplicable{"this sarama has Producer.Transaction, but this program was written against 1.22 and does not exercise it"}
}

func main() {
	if os.Getenv("SARAMA_LOG") != "" {
		sarama.Logger = log.New(os.Stderr, "sarama ", log.LstdFlags|log.Lmicroseconds)
	}
	checks := []struct {
		name string
		fn   func(context.Context) (string, error)
	}{
		{"metadata", checkMetadata},
		{"produce", checkProduce},
		{"idempotent", checkIdempotent},
		{"invalid_record", checkInvalidRecord},
		{"group", checkGroup},
		{"transactions", checkTransactions},
	}
	only := map[string]bool{}
	for _, a := range os.Args[1:] {
		only[a] = true
	}
	var names []string
	for _, c := range checks {
		names = append(names, c.name)
		delete(only, c.name)
	}
	if len(only) > 0 {
		var unknown []string
		for k := range only {
			unknown = append(unknown, k)
		}
		sort.Strings(unknown)
		fmt.Fprintf(os.Stderr, "usage: sarama-check [check...]; unknown: %v; checks: %v\n", unknown, names)
		os.Exit(2)
	}
	for _, c := range checks {
		if len(os.Args) == 1 || contains(os.Args[1:], c.name) {
			runCheck(c.name, c.fn)
		}
	}
	// A check that timed out may have left goroutines inside the client: do not wait for them.
	os.Exit(0)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
