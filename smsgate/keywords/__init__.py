"""smsgate.keywords"""
