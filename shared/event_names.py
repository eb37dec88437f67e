"""The event names of the webhook contract (DESIGN section 4), EmailEngine's camelCase names.

Apart from shared.events so that the settings store can validate event filters without
importing emission (and, through it, the metric definitions).
"""

EVENTS = ("messageNew", "messageDeleted", "messageUpdated", "mailboxNew", "mailboxDeleted",
          "mailboxReset", "authenticationError", "authenticationSuccess", "connectError",
          "accountInitialized", "accountAdded", "accountDeleted",
          "messageSent", "messageDeliveryError", "messageFailed",  # sending (workers/submit)
          "test")
