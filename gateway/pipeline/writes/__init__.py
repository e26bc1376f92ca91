"""The writes that stages share with each other and with the staff CLI (`tickets update`): a reply
plan applied to a ticket, a mail's files kept on it, a Message-ID collision said on it. Like the
stages, and unlike the pure pipeline modules, these write through the store."""
