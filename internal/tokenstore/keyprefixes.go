package tokenstore

// KeyPrefixes are the partition-key prefixes of every kind of item the table holds: an IAM
// policy limits a role to some of them with a dynamodb:LeadingKeys condition ("inst#*", …).
var KeyPrefixes = []string{instPrefix, codePrefix, workPrefix, oncePrefix, attemptPrefix, gatePrefix, shardPrefix}

// MethodKeyPrefixes maps each Store method that reads or writes table items by key (GetItem,
// PutItem, UpdateItem, DeleteItem, or an item of TransactWriteItems) to the prefixes of those
// items' keys. A role whose code calls a method needs its prefixes in its LeadingKeys
// condition; the template test derives each function's prefixes from this map. Methods that
// only query the refresh-due index (IndexMethods) are not in it.
var MethodKeyPrefixes = map[string][]string{
	"Install":            {instPrefix},
	"Get":                {instPrefix},
	"Describe":           {instPrefix},
	"SealPlaintext":      {instPrefix},
	"Lease":              {instPrefix},
	"SaveRefreshed":      {instPrefix},
	"Release":            {instPrefix},
	"RecordFailure":      {instPrefix},
	"MarkNeedsReauth":    {instPrefix},
	"Uninstall":          {instPrefix},
	"UninstallAsOf":      {instPrefix},
	"MarkUse":            {instPrefix},
	"SetAlwaysWarm":      {instPrefix},
	"Reschedule":         {instPrefix},
	"ClaimCode":          {codePrefix},
	"CompleteCode":       {codePrefix},
	"RetireCode":         {codePrefix},
	"ReleaseCode":        {codePrefix},
	"ClaimWork":          {workPrefix},
	"CompleteWork":       {workPrefix},
	"ReleaseWork":        {workPrefix},
	"MarkWorkCalling":    {workPrefix},
	"ForgetWork":         {workPrefix},
	"Once":               {oncePrefix},
	"AdvanceEntity":      {oncePrefix},
	"EntityTime":         {oncePrefix},
	"AcceptEvent":        {instPrefix, oncePrefix},
	"ForgetEvent":        {oncePrefix},
	"ConfirmEvent":       {oncePrefix},
	"RecordWebhookOwner": {oncePrefix},
	"WebhookOwner":       {oncePrefix},
	"CountAttempt":       {attemptPrefix},
	"Gate":               {gatePrefix},
	"PauseCompany":       {gatePrefix},
	"ClaimProbe":         {gatePrefix},
	"LiftPause":          {gatePrefix},
	"HoldToken":          {gatePrefix},
	"LeaseShard":         {shardPrefix},
	"ReleaseShard":       {shardPrefix},
}

// IndexMethods are the Store methods that query the refresh-due index (Query on
// <table>/index/refresh-due, whose partition key is due_shard, not pk) and touch no item by
// key, and DueShards, which touches nothing.
var IndexMethods = []string{"Due", "DueIn", "DueShards"}
