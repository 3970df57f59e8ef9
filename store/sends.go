package store

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mqim/mqim/protocol"
)

// The rules of Append and AppendGroup, shared by the implementations: they
// read what the rules need (SendLookups, GroupAsks), call DecideSends, and
// write what the plan's SendWrites say, in the order they say.

// Cmid names a message by its sender and the sender's cmid [IM-4.5-1].
type Cmid struct{ From, Cmid string }

// Stored is the message stored for a Cmid, with the digest it was stored
// with.
type Stored struct {
	Msg    Message
	Digest []byte
}

// ConvUser is a user in a conversation: a member to insert.
type ConvUser struct{ Conv, User string }

// ReadMark is a read position to move forward to Seq (never back).
type ReadMark struct {
	Conv, User string
	Seq        int64
}

func compareReads(a, b ReadMark) int {
	return cmp.Or(strings.Compare(a.Conv, b.Conv), strings.Compare(a.User, b.User))
}

// SendLookups returns what deciding batch reads: its distinct cmids, in
// batch order, and for direct sends the users and conversations named,
// sorted.
func SendLookups(batch []SendRequest) (cmids []Cmid, users, convs []string) {
	seen := make(map[Cmid]bool, len(batch))
	us := make(map[string]bool, 2*len(batch))
	cs := make(map[string]bool, len(batch))
	for i := range batch {
		r := &batch[i]
		if k := (Cmid{r.From, r.Cmid}); !seen[k] {
			seen[k] = true
			cmids = append(cmids, k)
		}
		if r.Group == "" {
			us[r.From], us[r.To] = true, true
			cs[protocol.DirectConv(r.From, r.To)] = true
		}
	}
	return cmids, slices.Sorted(maps.Keys(us)), slices.Sorted(maps.Keys(cs))
}

// SendPlan is the decision over one batch.
type SendPlan struct {
	// Results are one per request. Those of duplicates of stored messages
	// and of refusals are final; SendWrites.Number fills in the others.
	Results []SendResult
	// Fresh are the indices of the new messages, in batch order.
	Fresh   []int
	batch   []SendRequest
	retryOf map[int]int // request → the earlier new request of the batch it retries
}

// DecideSends decides each request of batch, in batch order, against
// stored (what was stored before the batch, by Cmid) and refuse (the rule
// of a new message: RefuseDirect or RefuseGroup):
//
//   - a stored (From, Cmid) with the same Digest is a duplicate, answered
//     with the stored message, even where refuse would now refuse it (a
//     retry after a block [IM-13.2-1]); with another Digest it is
//     ErrCmidConflict [IM-4.5];
//   - the (From, Cmid) of an earlier new request of the batch is treated the
//     same way, as that request's retry or a conflict;
//   - otherwise refuse's error, or a new message.
func DecideSends(batch []SendRequest, stored map[Cmid]Stored, refuse func(*SendRequest) error) *SendPlan {
	p := &SendPlan{Results: make([]SendResult, len(batch)), batch: batch, retryOf: make(map[int]int)}
	firstNew := make(map[Cmid]int)
	for i := range batch {
		r := &batch[i]
		k := Cmid{r.From, r.Cmid}
		if m, ok := stored[k]; ok {
			if bytes.Equal(m.Digest, r.Digest) {
				p.Results[i] = SendResult{Msg: m.Msg, Duplicate: true}
			} else {
				p.Results[i].Err = CmidConflictError(r.From, r.Cmid)
			}
			continue
		}
		if j, ok := firstNew[k]; ok {
			if bytes.Equal(batch[j].Digest, r.Digest) {
				p.retryOf[i] = j
			} else {
				p.Results[i].Err = CmidConflictError(r.From, r.Cmid)
			}
			continue
		}
		if err := refuse(r); err != nil {
			p.Results[i].Err = err
			continue
		}
		firstNew[k] = i
		p.Fresh = append(p.Fresh, i)
	}
	return p
}

// FreshCmids returns the cmids of the new messages, in batch order.
func (p *SendPlan) FreshCmids() []Cmid {
	ks := make([]Cmid, len(p.Fresh))
	for x, i := range p.Fresh {
		ks[x] = Cmid{p.batch[i].From, p.batch[i].Cmid}
	}
	return ks
}

// RefuseDirect is the rule of a new direct message: its recipient exists
// [IM-4.2] and does not block the sender [IM-13.2-1].
func RefuseDirect(r *SendRequest, recipientExists bool) error {
	switch {
	case !recipientExists:
		return UnknownUserError(r.To)
	case r.Blocked:
		return Refuse(ErrBlocked, "the recipient does not accept your messages")
	}
	return nil
}

// GroupState is a group as its rules read it, under the group's lock.
type GroupState struct {
	LastSeq  int64
	Fanout   string
	ReadFrom int64
	// Members are every member (ChangeGroup, and sends to a group that fans
	// out on write), or only those GroupAsks named (sends to a group that
	// fans out on read).
	Members map[string]Member
}

// GroupAsks returns the groups a batch sends to, sorted (the lock order),
// and for each the members its rules ask about: senders and mentioned
// users, sorted.
func GroupAsks(batch []SendRequest) (groups []string, asked map[string][]string) {
	asked = make(map[string][]string)
	for i := range batch {
		r := &batch[i]
		asked[r.Group] = append(asked[r.Group], r.From)
		for _, m := range r.Mentions {
			if m != "*" {
				asked[r.Group] = append(asked[r.Group], m)
			}
		}
	}
	for g, us := range asked {
		slices.Sort(us)
		asked[g] = slices.Compact(us)
	}
	return slices.Sorted(maps.Keys(asked)), asked
}

// MembersToRead says which members of g a batch's sends read: nil for all
// of them (write fan-out: each gets an inbox row), else only asked.
func (g *GroupState) MembersToRead(asked []string) []string {
	if g.Fanout == FanoutWrite {
		return nil
	}
	return asked
}

// RefuseGroup is the rule of a new group message [IM-11.5]: the group g
// exists (nil: it does not), the sender is a member and not muted (unless
// the request is a bridge's System notification [IM-4.6-5]), and every
// mentioned user is a member.
func RefuseGroup(r *SendRequest, g *GroupState) error {
	if g == nil {
		return NoGroupError(r.Group)
	}
	m, member := g.Members[r.From]
	switch {
	case !member && !r.System:
		return NotMemberError(r.From, r.Group)
	case m.Muted && !r.System:
		return Refuse(ErrMuted, "muted in %q", r.Group)
	}
	for _, u := range r.Mentions {
		if _, ok := g.Members[u]; !ok && u != "*" {
			return Refuse(ErrBadMention, "mentioned user %q is not a member of %q", u, r.Group)
		}
	}
	return nil
}

// Counters say how far a batch moves each counter it touches: a
// conversation's last seq (and last ts), a user's inbox seq.
type Counters struct {
	Conv   map[string]int64
	ConvTS map[string]int64
	User   map[string]int64
}

func newCounters() Counters {
	return Counters{Conv: make(map[string]int64), ConvTS: make(map[string]int64), User: make(map[string]int64)}
}

// Convs returns the conversations, sorted: the order their rows are locked.
func (c *Counters) Convs() []string { return slices.Sorted(maps.Keys(c.Conv)) }

// Users returns the users, sorted: the order their rows are locked, after
// the conversations.
func (c *Counters) Users() []string { return slices.Sorted(maps.Keys(c.User)) }

// bases returns the counters' values before the batch from their values
// after it (last), which the store read when it moved them.
func bases(n, last map[string]int64, what string) (map[string]int64, error) {
	if len(last) != len(n) {
		return nil, fmt.Errorf("%d of %d %s counters moved", len(last), len(n), what)
	}
	base := make(map[string]int64, len(n))
	for k, d := range n {
		l, ok := last[k]
		if !ok {
			return nil, fmt.Errorf("%s counter of %q not moved", what, k)
		}
		base[k] = l - d
	}
	return base, nil
}

// SendWrites is what the new messages of a plan need: the rows to create
// before them, the counters to move, and (Number) the rows to write.
type SendWrites struct {
	Counters
	// Direct sends: the senders that are not users yet, the conversations
	// that do not exist yet and their members, sorted.
	NewUsers   []string
	NewConvs   []string
	NewMembers []ConvUser

	plan   *SendPlan
	groups map[string]*GroupState // group sends
}

// Direct returns the writes of a plan of direct sends, given which users
// and conversations exist.
func (p *SendPlan) Direct(users, convs map[string]bool) *SendWrites {
	w := &SendWrites{Counters: newCounters(), plan: p}
	newUser, newConv := make(map[string]bool), make(map[string]bool)
	for _, i := range p.Fresh {
		r := &p.batch[i]
		c := protocol.DirectConv(r.From, r.To)
		w.Conv[c]++
		w.ConvTS[c] = max(w.ConvTS[c], r.TS)
		w.User[r.To]++
		w.User[r.From]++
		if !users[r.From] && !newUser[r.From] {
			newUser[r.From] = true
			w.NewUsers = append(w.NewUsers, r.From)
		}
		if !convs[c] && !newConv[c] {
			newConv[c] = true
			w.NewConvs = append(w.NewConvs, c)
			w.NewMembers = append(w.NewMembers, ConvUser{c, r.From}, ConvUser{c, r.To})
		}
	}
	// Inserts that may wait for a concurrent insert of the same key go in
	// sorted order too, like the locks.
	slices.Sort(w.NewUsers)
	slices.Sort(w.NewConvs)
	slices.SortFunc(w.NewMembers, func(a, b ConvUser) int {
		return cmp.Or(strings.Compare(a.Conv, b.Conv), strings.Compare(a.User, b.User))
	})
	return w
}

// Group returns the writes of a plan of group sends, given the groups'
// states (nil or missing: no such group).
func (p *SendPlan) Group(groups map[string]*GroupState) *SendWrites {
	w := &SendWrites{Counters: newCounters(), plan: p, groups: groups}
	for _, i := range p.Fresh {
		r := &p.batch[i]
		w.Conv[r.Group]++
		w.ConvTS[r.Group] = max(w.ConvTS[r.Group], r.TS)
		g := groups[r.Group]
		for _, u := range g.inboxOf(r) {
			w.User[u]++
		}
	}
	return w
}

// MessageRow is a message as the stores write it: Body and Digest are
// never nil (a driver writes a nil []byte as NULL), Mentions is the
// column's text.
type MessageRow struct {
	ID, Seq, TS            int64
	Conv, From, Cmid, Type string
	Body, Digest           []byte
	Mentions               string
	// RefSeq is, for a change's timeline event, the seq of the message it
	// changes (ChangeEvent); 0 otherwise.
	RefSeq int64
}

// NewMessageRow returns the row of m, stored with digest.
func NewMessageRow(m *Message, digest []byte) MessageRow {
	return MessageRow{ID: m.ID, Seq: m.Seq, TS: m.TS, Conv: m.Conv, From: m.From, Cmid: m.Cmid, Type: m.Type,
		Body: nonNil(m.Body), Digest: nonNil(digest), Mentions: MentionsText(m.Mentions)}
}

// SendRows are the rows a batch writes.
type SendRows struct {
	Messages []MessageRow // the new messages, in batch order
	Inbox    []InboxEvent // their inbox rows, in batch order
	Reads    []ReadMark   // the senders' read positions, sorted
	// Push are the push outbox rows of the new messages [IM-17.2]; the
	// stores write those of users with a registered push device.
	Push []PushCandidate
}

// Number numbers the new messages and their inbox rows in batch order,
// from the counters' values after the store moved them by w.Counters
// (convLast, userLast), and fills in the plan's Results.
func (w *SendWrites) Number(convLast, userLast map[string]int64) (SendRows, error) {
	convNext, err := bases(w.Conv, convLast, "conversation")
	if err != nil {
		return SendRows{}, err
	}
	userNext, err := bases(w.User, userLast, "inbox")
	if err != nil {
		return SendRows{}, err
	}
	p := w.plan
	var rows SendRows
	reads := make(map[ConvUser]int64)
	for _, i := range p.Fresh {
		r := &p.batch[i]
		conv, to, kind, mentions := r.Group, []string{r.To, r.From}, KindMessage, normMentions(r.Mentions)
		g := w.groups[r.Group]
		if r.Group == "" {
			conv, mentions = protocol.DirectConv(r.From, r.To), nil
		} else {
			to, kind = g.inboxOf(r), g.inboxKind()
		}
		convNext[conv]++
		m := Message{ID: r.ID, Conv: conv, Seq: convNext[conv], From: r.From, Cmid: r.Cmid, Type: r.Type,
			Body: r.Body, TS: r.TS, Mentions: mentions}
		rows.Messages = append(rows.Messages, NewMessageRow(&m, r.Digest))
		res := SendResult{Msg: m, Broadcast: g != nil && g.Fanout != FanoutWrite}
		shared := m
		for _, u := range to {
			userNext[u]++
			res.Events = append(res.Events, InboxEvent{User: u, Seq: userNext[u], Kind: kind, Conv: conv,
				ConvSeq: m.Seq, Actor: r.From, TS: r.TS, Msg: &shared})
		}
		rows.Inbox = append(rows.Inbox, res.Events...)
		rows.Push = append(rows.Push, pushCandidates(r, g, &m, res.Events)...)
		p.Results[i] = res
		// Sending marks the conversation read by the sender up to its
		// message [IM-7.6-2]; a bridge that is no member has no position.
		if g.hasReadPosition(r.From) {
			reads[ConvUser{conv, r.From}] = m.Seq // seqs grow in batch order
		}
	}
	for i, j := range p.retryOf {
		p.Results[i] = SendResult{Msg: p.Results[j].Msg, Duplicate: true}
	}
	for k, seq := range reads {
		rows.Reads = append(rows.Reads, ReadMark{Conv: k.Conv, User: k.User, Seq: seq})
	}
	slices.SortFunc(rows.Reads, compareReads)
	return rows, nil
}

// inboxOf returns who gets an inbox row of r's new message in group g,
// sorted: while g fans out on write every member [IM-11.3-1]; while it
// fans out on read, each member r names in its mentions (not "*", and not
// the sender), who gets a mention event [IM-11.6-2].
func (g *GroupState) inboxOf(r *SendRequest) []string {
	if g.Fanout == FanoutWrite {
		return slices.Sorted(maps.Keys(g.Members))
	}
	var to []string
	for _, u := range normMentions(r.Mentions) {
		if u != "*" && u != r.From {
			to = append(to, u)
		}
	}
	return to
}

// inboxKind is the kind of the inbox rows of g's new messages (inboxOf).
func (g *GroupState) inboxKind() string {
	if g.Fanout == FanoutWrite {
		return KindMessage
	}
	return KindMention
}

// hasReadPosition reports whether user has a read position: always in a
// direct conversation (g nil), else if a member.
func (g *GroupState) hasReadPosition(user string) bool {
	if g == nil {
		return true
	}
	_, ok := g.Members[user]
	return ok
}

// normMentions returns the mentions sorted and distinct, nil for none.
func normMentions(ms []string) []string {
	if len(ms) == 0 {
		return nil
	}
	out := slices.Clone(ms)
	slices.Sort(out)
	return slices.Compact(out)
}

// MentionsText is the stored form of mentions: ids separated by spaces.
func MentionsText(ms []string) string { return strings.Join(ms, " ") }

// ParseMentions reads the stored form of mentions.
func ParseMentions(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
