"""smsgate.queue"""
